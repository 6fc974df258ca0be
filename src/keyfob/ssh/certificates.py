"""SSH certificates on the server side (issue 26), standard library only.

- :func:`build_certificates`: the sshd drop-in for stock OpenSSH that trusts Keyfob's
  certificate authority and asks Keyfob, at each login, which accounts may log in as the
  Unix user (``AuthorizedPrincipalsCommand``);
- :func:`principals`: that question (``keyfob-ssh principals LOGIN``), failing closed;
- :func:`fetch_ca`: the CA's public keys and the revocation list, for ``keyfob-ssh ca-sync``.

The HTTPS client is pam_keyfob's: the same token file, CA file and one deadline per call.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from keyfob.ssh import pam_keyfob, serverconfig
from keyfob.ssh.serverconfig import MARKER, BadCentral, ServerConfig

PRINCIPALS_PATH = "/api/v1/ssh/principals"
CA_PATH = "/api/v1/ssh/ca"
KRL_PATH = "/api/v1/ssh/krl"
DEFAULT_CA_FILE = Path("/etc/ssh/keyfob_user_ca.pub")
DEFAULT_KRL_FILE = Path("/etc/ssh/keyfob_revoked.krl")
LOGIN_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\Z")
# An account's principal, or a member's at a strength (keyfob-<id>-mfa, keyfob-<id>-key:
# issue 27's team grants). Anything else in Keyfob's answer fails the login closed.
PRINCIPAL_RE = re.compile(r"\Akeyfob-[0-9]{1,19}(-mfa|-key)?\Z")
CA_LINE_RE = re.compile(r"\Assh-ed25519 [A-Za-z0-9+/]+={0,2}( [\x21-\x7e]{1,64})?\Z")
KRL_MAGIC = b"SSHKRL\n\0"
MAX_KRL = 4 * 1024 * 1024
MAX_CA = 64 * 1024


def options(
    url: str, token_file: Path, cafile: Path | None = None, timeout: float = 5.0
) -> pam_keyfob.Options:
    """pam_keyfob's options for ``url``; raises :class:`pam_keyfob.ConfigError`."""
    args = [f"url={url}", f"token_file={token_file}", f"timeout={timeout}"]
    if cafile is not None:
        args.append(f"cafile={cafile}")
    return pam_keyfob.parse_options(args)


def principals(opts: pam_keyfob.Options, login: str) -> list[str]:
    """The principals Keyfob lets log in as ``login`` on this server (none is an answer).

    Raises :class:`pam_keyfob.Unavailable` when there is no usable answer (sshd must then
    refuse the certificate: the caller prints nothing and exits non-zero), and
    :class:`pam_keyfob.ConfigError` for the token file. ``login`` must match LOGIN_RE.
    """
    data = pam_keyfob.call(opts, PRINCIPALS_PATH, {"login": login})
    names = data.get("principals")
    if not isinstance(names, list) or not all(
        isinstance(name, str) and PRINCIPAL_RE.fullmatch(name) for name in names
    ):
        raise pam_keyfob.Unavailable("malformed answer")
    return list(names)


@dataclass(frozen=True)
class CaFiles:
    keys: str  # TrustedUserCAKeys content
    krl: bytes  # RevokedKeys content


def fetch_ca(opts: pam_keyfob.Options) -> CaFiles:
    """The CA's public keys and the revocation list, checked; raises
    :class:`pam_keyfob.Unavailable` (nothing to write then)."""
    status, raw = pam_keyfob.request(opts, "GET", CA_PATH, limit=MAX_CA)
    try:
        data = json.loads(raw) if status == 200 and len(raw) <= MAX_CA else None
    except ValueError:
        data = None
    keys = data.get("keys") if isinstance(data, dict) else None
    if (
        not isinstance(keys, list)
        or not keys
        or not all(isinstance(key, str) and CA_LINE_RE.fullmatch(key) for key in keys)
    ):
        raise pam_keyfob.Unavailable(f"HTTP {status}: no usable CA keys")
    status, krl = pam_keyfob.request(opts, "GET", KRL_PATH, limit=MAX_KRL)
    if status != 200 or len(krl) > MAX_KRL or not krl.startswith(KRL_MAGIC):
        raise pam_keyfob.Unavailable(f"HTTP {status}: no usable revocation list")
    return CaFiles("".join(f"{key}\n" for key in keys), krl)


def write_ca(files: CaFiles, ca_file: Path, krl_file: Path) -> None:
    """Write both files (atomic replace each, mode 0644: sshd reads them as root anyway,
    and they hold nothing secret). The KRL goes first: a new CA key is never trusted before
    the list that may revoke its certificates."""
    _write_bytes(krl_file, files.krl)
    serverconfig.write_file(ca_file, files.keys, mode=0o644)


def _write_bytes(path: Path, data: bytes) -> None:
    """Atomic replace, as serverconfig.write_file, for bytes."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def _word(path: Path) -> bool:
    text = str(path)
    return path.is_absolute() and text.isprintable() and not any(c in text for c in " \t\"'%")


def build_certificates(
    url: str,
    token_file: Path,
    command: Path,
    *,
    cafile: Path | None = None,
    ca_file: Path = DEFAULT_CA_FILE,
    krl_file: Path = DEFAULT_KRL_FILE,
    fallback_pam: bool = False,
    module_dir: Path = serverconfig.DEFAULT_MODULE_DIR,
) -> ServerConfig:
    """The sshd configuration for Keyfob's certificates (and, with ``fallback_pam``, the
    PAM line of the alternative path).

    Without the fallback a login needs a certificate: ``AuthorizedKeysFile none`` (a plain
    key would otherwise log in with no second factor) and ``AuthenticationMethods
    publickey``. With it, a login without a usable certificate may instead answer PAM: the
    password then the Keyfob code (``AuthenticationMethods publickey
    keyboard-interactive``; common-auth stays in the PAM service).

    Raises :class:`BadCentral` for a bad URL or path.
    """
    pam = serverconfig.build_central(
        url, token_file, "keyboard-interactive", cafile=cafile, module_dir=module_dir
    )
    paths = [token_file, command, ca_file, krl_file, *([cafile] if cafile else [])]
    if any(not _word(path) for path in paths):
        raise BadCentral(url)
    argv = [str(command), "principals", "--url", url.rstrip("/"), "--token-file", str(token_file)]
    if cafile is not None:
        argv += ["--cafile", str(cafile)]
    lines = [
        f"{MARKER}: SSH logins with a short-lived certificate signed by Keyfob ({url}).",
        "# At each login Keyfob says which account may log in as the Unix user (the one",
        "# linked to it on this server, with two-factor authentication on); if Keyfob cannot",
        "# be reached, the certificate is refused. Refresh the two files with",
        "# `keyfob-ssh ca-sync` (cron, hourly).",
        f"TrustedUserCAKeys {ca_file}",
        f"RevokedKeys {krl_file}",
        f"AuthorizedPrincipalsCommand {shlex.join(argv)} %u",
        # root: the token file is root's alone, as for pam_keyfob.
        "AuthorizedPrincipalsCommandUser root",
        "AuthorizedKeysFile none",
        "PubkeyAuthentication yes",
    ]
    if fallback_pam:
        lines += [
            "# Without a usable certificate: the password, then the Keyfob code (PAM).",
            "AuthenticationMethods publickey keyboard-interactive",
            "KbdInteractiveAuthentication yes",
            "UsePAM yes",
        ]
    else:
        lines += ["AuthenticationMethods publickey"]
    return ServerConfig("\n".join(lines) + "\n", pam.pam_line, comment_out_common_auth=False)
