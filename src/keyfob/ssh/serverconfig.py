"""sshd and PAM configuration for SSH 2FA: ``pam_google_authenticator`` (standalone mode),
or Keyfob's own ``pam_keyfob.py`` under ``pam_python.so`` (central mode, :func:`build_central`).

Two pieces:

- an sshd drop-in (Debian's ``/etc/ssh/sshd_config`` includes ``sshd_config.d/*.conf``
  *before* its own settings, and for sshd the first value wins, so the drop-in overrides
  Debian's ``KbdInteractiveAuthentication no``);
- the PAM ``auth`` line in the sshd PAM service. When the methods ask for a public key then
  keyboard-interactive, the password step (``@include common-auth``) is commented out so
  that the code is the only thing PAM asks for; otherwise the line goes after it.

Nothing is written unless ``sshd -t`` accepts the resulting configuration.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DROP_IN = Path("/etc/ssh/sshd_config.d/50-keyfob-2fa.conf")
DEFAULT_SSHD_CONFIG = Path("/etc/ssh/sshd_config")
DEFAULT_PAM_FILE = Path("/etc/pam.d/sshd")
DEFAULT_SSHD = Path("/usr/sbin/sshd")
DEFAULT_METHODS = "publickey,keyboard-interactive"
MODULE_NAME = "pam_google_authenticator.so"
CENTRAL_MODULE_NAME = "pam_python.so"
CENTRAL_SCRIPT = "pam_keyfob.py"
DEFAULT_MODULE_DIR = Path("/usr/local/lib/keyfob")
MODULE_DIRS = (
    "/lib/security",
    "/lib64/security",
    "/usr/lib/security",
    "/usr/lib64/security",
    "/lib/*-linux-gnu*/security",
    "/usr/lib/*-linux-gnu*/security",
)
KNOWN_METHODS = {
    "publickey",
    "keyboard-interactive",
    "password",
    "hostbased",
    "gssapi-with-mic",
    "none",
}
MARKER = "# keyfob-ssh"
SSHD_TIMEOUT = 20


class ServerConfigError(Exception):
    """Base class; ``str()`` is an English fallback message."""

    code = "server_config"


class BadMethods(ServerConfigError):
    """The ``--methods`` value is not a valid AuthenticationMethods list."""

    code = "bad_methods"


class MethodsOrder(BadMethods):
    """keyboard-interactive comes before another method in a list: the code would be asked
    before the key, so anyone who reaches sshd could spend the account's tries."""

    code = "methods_order"


class ModuleMissing(ServerConfigError):
    """pam_google_authenticator.so is not installed."""

    code = "module_missing"


class SshdRejected(ServerConfigError):
    """``sshd -t`` refused the configuration; ``output`` holds what it said."""

    code = "sshd_rejected"

    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


class BadCentral(ServerConfigError):
    """The ``--central`` URL or a path for the PAM line is not usable."""

    code = "bad_central"


class SshdMissing(ServerConfigError):
    """No sshd binary to validate with."""

    code = "sshd_missing"


@dataclass(frozen=True)
class ServerConfig:
    drop_in: str
    pam_line: str
    comment_out_common_auth: bool


def validate_methods(methods: str) -> str:
    """Return ``methods`` normalised; raise :class:`BadMethods` (:class:`MethodsOrder`
    when keyboard-interactive is not last).

    sshd syntax: lists separated by spaces, methods in a list by commas; each list must end
    with keyboard-interactive for the code to be asked (else the module is never used), and
    only there: sshd runs a list in order, and the code must be asked once the key (or
    whatever comes first) has passed, never of anyone who reaches sshd.
    """
    lists = methods.replace(";", " ").split()
    if not lists:
        raise BadMethods(methods)
    for item in lists:
        parts = item.split(",")
        names = [p.split(":", 1)[0] for p in parts]
        if any(name not in KNOWN_METHODS for name in names):
            raise BadMethods(methods)
        if "keyboard-interactive" not in names:
            raise BadMethods(methods)
        if names.index("keyboard-interactive") != len(names) - 1:
            raise MethodsOrder(methods)
    return " ".join(lists)


def build(methods: str = DEFAULT_METHODS, *, nullok: bool = False) -> ServerConfig:
    methods = validate_methods(methods)
    drop_in = (
        f"{MARKER}: SSH logins need a one-time code checked by pam_google_authenticator.\n"
        "# Each user runs `keyfob-ssh setup` first: without its file a login is refused.\n"
        f"AuthenticationMethods {methods}\n"
        "KbdInteractiveAuthentication yes\n"
        "UsePAM yes\n"
    )
    pam_line = f"auth required {MODULE_NAME}" + (" nullok" if nullok else "")
    # With a public key first, PAM must ask only for the code, not the password too.
    every_list_has_key = all("publickey" in item.split(",") for item in methods.split())
    return ServerConfig(drop_in, pam_line, comment_out_common_auth=every_list_has_key)


def _pam_word(value: str) -> bool:
    """Whether ``value`` can be one argument of a PAM line (no space, no bracket)."""
    return bool(value) and value.isprintable() and not any(c in value for c in " \t[]")


def build_central(
    url: str,
    token_file: Path,
    methods: str = DEFAULT_METHODS,
    *,
    nullok: bool = False,
    cafile: Path | None = None,
    module_dir: Path = DEFAULT_MODULE_DIR,
) -> ServerConfig:
    """The configuration for central mode: codes checked by Keyfob at ``url``.

    Raises :class:`BadMethods` or :class:`BadCentral`.
    """
    methods = validate_methods(methods)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise BadCentral(url) from None
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
        or not _pam_word(url)
    ):
        raise BadCentral(url)
    paths = [module_dir / CENTRAL_SCRIPT, token_file, *([cafile] if cafile else [])]
    if any(not path.is_absolute() or not _pam_word(str(path)) for path in paths):
        raise BadCentral(url)
    drop_in = (
        f"{MARKER}: SSH logins need the one-time code of the user's Keyfob account,\n"
        f"# checked by Keyfob ({url}) through {CENTRAL_SCRIPT}.\n"
        "# Each login must be linked to an account first (keyfob ssh-link EMAIL LOGIN).\n"
        f"AuthenticationMethods {methods}\n"
        "KbdInteractiveAuthentication yes\n"
        "UsePAM yes\n"
    )
    options = [f"url={url.rstrip('/')}", f"token_file={token_file}"]
    if cafile is not None:
        options.append(f"cafile={cafile}")
    if nullok:
        options.append("nullok")
    pam_line = f"auth required {CENTRAL_MODULE_NAME} {module_dir / CENTRAL_SCRIPT} " + " ".join(
        options
    )
    every_list_has_key = all("publickey" in item.split(",") for item in methods.split())
    return ServerConfig(drop_in, pam_line, comment_out_common_auth=every_list_has_key)


def module_source() -> Path:
    """The PAM module shipped with keyfob, to be copied onto the server."""
    return Path(__file__).resolve().parent / CENTRAL_SCRIPT


def install_module(module_dir: Path) -> Path:
    """Copy the PAM module into ``module_dir`` (made 0755 if missing), mode 0644."""
    module_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    target = module_dir / CENTRAL_SCRIPT
    write_file(target, module_source().read_text(encoding="utf-8"), mode=0o644)
    return target


def token_file_problem(path: Path) -> str | None:
    """None if ``path`` is a regular file of root's that only root can read, else why not:
    "missing", "not_root_only"."""
    try:
        info = os.lstat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        return "not_root_only"
    return None


def find_module(name: str = MODULE_NAME) -> Path | None:
    for pattern in MODULE_DIRS:
        for candidate in sorted(glob.glob(os.path.join(pattern, name))):
            if os.path.isfile(candidate):
                return Path(candidate)
    return None


def updated_pam(current: str, config: ServerConfig) -> str:
    """Return the PAM service text with our ``auth`` line, idempotently."""
    lines = current.splitlines()
    out: list[str] = []
    inserted = False
    for line in lines:
        stripped = line.strip()
        active = stripped.split("#", 1)[0]
        if stripped.endswith(MARKER) or MODULE_NAME in active or CENTRAL_SCRIPT in active:
            continue  # our previous line (or another one for the module): replaced below
        if re.fullmatch(r"@include\s+common-auth", stripped):
            if config.comment_out_common_auth:
                out.append(f"# {stripped}  {MARKER}: public key + code, no password")
            else:
                out.append(line)
            if not inserted:
                out.append(f"{config.pam_line}  {MARKER}")
                inserted = True
            continue
        if stripped.startswith("# @include common-auth") and MARKER in stripped:
            if not config.comment_out_common_auth:
                out.append("@include common-auth")
            else:
                out.append(line)
            if not inserted:
                out.append(f"{config.pam_line}  {MARKER}")
                inserted = True
            continue
        out.append(line)
    if not inserted:
        # No common-auth include: put the line before the first other auth line.
        for index, line in enumerate(out):
            if re.match(r"\s*-?auth\s", line):
                out.insert(index, f"{config.pam_line}  {MARKER}")
                break
        else:
            out.append(f"{config.pam_line}  {MARKER}")
    return "\n".join(out) + "\n"


def check_with_sshd(
    drop_in: str, *, sshd: Path = DEFAULT_SSHD, sshd_config: Path = DEFAULT_SSHD_CONFIG
) -> None:
    """Run ``sshd -t`` on the drop-in followed by the main configuration.

    Raise :class:`SshdMissing` or :class:`SshdRejected`.
    """
    if not os.access(sshd, os.X_OK):
        raise SshdMissing(str(sshd))
    with tempfile.TemporaryDirectory(prefix="keyfob-ssh-") as tmp:
        test_config = Path(tmp) / "sshd_config"
        # The drop-in first then the real file: exactly the order sshd will read them in.
        test_config.write_text(f"{drop_in}Include {sshd_config.resolve()}\n", encoding="utf-8")
        try:
            result = subprocess.run(
                [str(sshd), "-t", "-f", str(test_config)],
                capture_output=True,
                text=True,
                timeout=SSHD_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SshdRejected(str(exc)) from exc
    if result.returncode != 0:
        raise SshdRejected((result.stderr + result.stdout).strip())


def not_in_effect(
    methods: str, *, sshd: Path = DEFAULT_SSHD, sshd_config: Path = DEFAULT_SSHD_CONFIG
) -> list[str]:
    """Return the settings ``sshd -T`` does not show as we want them (after writing).

    An empty list means the drop-in is in effect; a non-empty one usually means the main
    configuration does not include the drop-in's directory, or sets a value first.
    """
    try:
        result = subprocess.run(
            [str(sshd), "-T", "-f", str(sshd_config)],
            capture_output=True,
            text=True,
            timeout=SSHD_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ["sshd -T"]
    effective: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _sep, value = line.partition(" ")
        effective.setdefault(key.lower(), value.strip())
    wanted = {
        "authenticationmethods": validate_methods(methods),
        "kbdinteractiveauthentication": "yes",
        "usepam": "yes",
    }
    return [f"{key} {value}" for key, value in wanted.items() if effective.get(key) != value]


def write_file(path: Path, content: str, mode: int = 0o644) -> None:
    """Atomic replace (temporary file in the same directory, fsync, rename)."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
