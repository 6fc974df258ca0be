"""``keyfob-ssh login``: a short-lived OpenSSH certificate after a strong sign-in (issue 26).

The device authorization grant (RFC 8628) with Keyfob's OpenID Connect provider: this
command asks for a code, shows where to enter it, waits while the person approves in the
portal (signed in with a key or a code within the last minutes), then sends the *public*
key to Keyfob's certificate API with the token it got and writes the certificate beside
the key (``id_ed25519-cert.pub``). The private key never leaves this machine. With an
``ssh-agent`` running, the key and its certificate are added to it for the certificate's
lifetime.

Standard library only, like the rest of ``keyfob-ssh``.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keyfob.ssh.messages import (
    EXIT_FILE,
    EXIT_REFUSED,
    EXIT_SYSTEM,
    EXIT_USAGE,
    Console,
    Failure,
    _,
)

CLIENT_ID = "keyfob-ssh"
SCOPE = "ssh"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Key types Keyfob certifies (FIDO sk- keys are refused by the portal with its reason).
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_TIMEOUT = 20.0
_MAX_BODY = 1 << 20


@dataclass
class Portal:
    base: str
    tls: ssl.SSLContext | None

    @classmethod
    def parse(cls, url: str, cafile: Path | None) -> Portal:
        """https://host[:port][/path], or http:// to this very machine (tests, a tunnel)."""
        parts = urllib.parse.urlsplit(url.strip())
        loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
        if (
            parts.scheme not in ("https", "http")
            or (parts.scheme == "http" and not loopback)
            or not parts.hostname
            or parts.query
            or parts.fragment
            or parts.username
            or any(c.isspace() for c in url.strip())
        ):
            raise Failure(
                _("--portal {url!r} is not valid: give the portal's https:// address").format(
                    url=url
                ),
                EXIT_USAGE,
            )
        tls = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        return cls(url.strip().rstrip("/"), tls if parts.scheme == "https" else None)

    def request(
        self,
        method: str,
        url: str,
        *,
        form: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        bearer: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """Send a request to the portal; return (status, JSON body). Raises Failure when
        the portal cannot be reached or does not answer JSON."""
        # Only to the portal itself: an endpoint its discovery names elsewhere is refused
        # (the token would travel there).
        here, there = urllib.parse.urlsplit(self.base), urllib.parse.urlsplit(url)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            raise Failure(
                _("the portal named an address on another host: {url}").format(url=url),
                EXIT_SYSTEM,
            )
        headers = {"Accept": "application/json", "User-Agent": "keyfob-ssh"}
        data: bytes | None = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        # The scheme was checked above: the portal's own https://, or http:// to loopback.
        req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=_TIMEOUT, context=self.tls) as response:  # noqa: S310 (https, or http to loopback only)
                status, raw = response.status, response.read(_MAX_BODY)
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read(_MAX_BODY)
        except (OSError, urllib.error.URLError) as exc:
            raise Failure(
                _("cannot reach the portal at {url}: {detail}").format(url=self.base, detail=exc),
                EXIT_SYSTEM,
            ) from None
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise Failure(
                _("the portal answered {status} without the expected data").format(status=status),
                EXIT_SYSTEM,
            )
        return status, answer


def public_key_line(key: Path) -> tuple[Path, str]:
    """The public key beside ``key`` (``key.pub``): its path and its line. Raises Failure."""
    pub = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    try:
        line = pub.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise Failure(
            _("{path} not found: make a key first with ssh-keygen -t ed25519").format(path=pub),
            EXIT_FILE,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(
            _("cannot read {path}: {detail}").format(path=pub, detail=exc), EXIT_FILE
        ) from None
    fields = line.split()
    if len(fields) < 2 or fields[0] not in KEY_TYPES or len(line) > 8192:
        raise Failure(_("{path} is not an Ed25519 or ECDSA public key").format(path=pub), EXIT_FILE)
    return pub, " ".join(fields[:2])


def _endpoints(portal: Portal) -> tuple[str, str, str]:
    status, meta = portal.request("GET", portal.base + "/.well-known/openid-configuration")
    device = meta.get("device_authorization_endpoint")
    token = meta.get("token_endpoint")
    if status != 200 or not isinstance(device, str) or not isinstance(token, str):
        raise Failure(_("{url} is not a Keyfob portal").format(url=portal.base), EXIT_SYSTEM)
    return device, token, portal.base + "/api/v1/ssh/certificates"


def _wait_for_token(
    portal: Portal, token_url: str, grant: dict[str, Any], sleep: Callable[[float], None]
) -> str:
    interval = max(1, int(grant.get("interval") or 5))
    deadline = time.monotonic() + min(int(grant.get("expires_in") or 600), 1800)
    while time.monotonic() < deadline:
        sleep(interval)
        status, answer = portal.request(
            "POST",
            token_url,
            form={
                "grant_type": DEVICE_GRANT,
                "device_code": str(grant["device_code"]),
                "client_id": CLIENT_ID,
            },
        )
        if status == 200 and isinstance(answer.get("access_token"), str):
            return str(answer["access_token"])
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error == "access_denied":
            raise Failure(_("the request was denied in the portal: no certificate"), EXIT_REFUSED)
        if error == "expired_token":
            break
        raise Failure(_("the portal refused: {error}").format(error=error or status), EXIT_REFUSED)
    raise Failure(
        _("the code expired before it was approved: run keyfob-ssh login again"), EXIT_REFUSED
    )


def _write_certificate(pub: Path, certificate: str) -> Path:
    """Write ``id_x-cert.pub`` beside the key, atomically; return its path."""
    name = pub.name[: -len(".pub")] + "-cert.pub"
    target = pub.with_name(name)
    fd, tmp = tempfile.mkstemp(prefix=".keyfob-cert-", dir=str(pub.parent))
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(certificate.strip() + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise Failure(
            _("cannot write {path}: {detail}").format(path=target, detail=exc), EXIT_FILE
        ) from None
    return target


def _add_to_agent(key: Path, seconds: int, console: Console) -> None:
    ssh_add = shutil.which("ssh-add")
    if not os.environ.get("SSH_AUTH_SOCK") or ssh_add is None or seconds <= 0:
        return
    done = subprocess.run(
        [ssh_add, "-t", str(seconds), str(key)], check=False, capture_output=True, text=True
    )
    if done.returncode == 0:
        console.say(_("Added to ssh-agent until the certificate expires."))
    else:
        console.say(_("Not added to ssh-agent: {detail}").format(detail=done.stderr.strip()))


def login(
    portal_url: str,
    key: Path,
    console: Console,
    *,
    cafile: Path | None = None,
    open_browser: bool = True,
    agent: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """The whole command; returns the certificate's path. Raises Failure."""
    portal = Portal.parse(portal_url, cafile)
    key = key.expanduser()
    private = key.with_suffix("") if key.suffix == ".pub" else key
    pub, line = public_key_line(private)
    device_url, token_url, cert_url = _endpoints(portal)
    status, grant = portal.request(
        "POST", device_url, form={"client_id": CLIENT_ID, "scope": SCOPE}
    )
    if status != 200 or not all(
        isinstance(grant.get(k), str) for k in ("device_code", "user_code", "verification_uri")
    ):
        raise Failure(
            _("the portal refused to start a sign-in: {error}").format(
                error=grant.get("error") or status
            ),
            EXIT_SYSTEM,
        )
    complete = grant.get("verification_uri_complete")
    console.say(
        _("To get your SSH certificate, open {url} and enter the code {code}").format(
            url=grant["verification_uri"], code=grant["user_code"]
        )
    )
    if isinstance(complete, str):
        console.say(_("or open {url}").format(url=complete))
        if open_browser:
            try:
                webbrowser.get()
            except webbrowser.Error:
                pass
            else:
                webbrowser.open(complete)
    console.say(_("Waiting for your approval…"))
    access = _wait_for_token(portal, token_url, grant, sleep)
    status, issued = portal.request("POST", cert_url, body={"public_key": line}, bearer=access)
    certificate = issued.get("certificate")
    if status != 200 or not isinstance(certificate, str):
        error = issued.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        message = message or status
        raise Failure(_("no certificate: {reason}").format(reason=message), EXIT_REFUSED)
    target = _write_certificate(pub, certificate)
    valid_before = issued.get("valid_before")
    until = ""
    seconds = 0
    if isinstance(valid_before, str):
        try:
            end = datetime.fromisoformat(valid_before)
            seconds = int((end - datetime.now(UTC)).total_seconds())
            until = end.astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    principals = issued.get("logins") or issued.get("principals") or []
    console.say(
        _("Certificate written to {path}, valid until {until}.").format(
            path=target, until=until or "?"
        )
    )
    if principals:
        console.say(_("It lets you in as: {logins}").format(logins=", ".join(map(str, principals))))
    if agent:
        _add_to_agent(private, seconds, console)
    return target
