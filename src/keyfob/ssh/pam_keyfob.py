"""pam_keyfob: SSH asks for the code of the customer's Keyfob account, and Keyfob checks it.

A module for ``pam_python.so`` (Debian's ``libpam-python``, which embeds the system's
Python 3), standard library only: it is copied alone onto SSH servers, where Keyfob and
Django are not installed. ``keyfob-ssh server-config --central`` installs it and writes::

    auth required pam_python.so /usr/local/lib/keyfob/pam_keyfob.py \\
        url=https://keyfob.example.com token_file=/etc/keyfob/token [options]

Options (``name=value``, no spaces):

``url``          Keyfob's base URL, https:// only (required)
``token_file``   file holding this server's token (required; root only, mode 0600 or 0400)
``cafile``       CA certificates to trust for Keyfob (default: the system's)
``timeout``      seconds for each call to Keyfob, 0.5 to 30 (default 5): one deadline for
                 the connection, the TLS handshake, the request and the whole answer
``nullok``       an account without 2FA logs in with the key alone (roll-out only)
``lang``         ``en`` or ``fr``: the language of the messages (default ``en``)

Anything but an answer from Keyfob refuses the login (fail closed): Keyfob unreachable or
slow, a bad certificate, a refused token, an unreadable token file, an unknown option.
The code is sent to Keyfob and nowhere else: never logged, never kept.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import math
import os
import socket
import ssl
import stat
import syslog
import time
from typing import Any, cast
from urllib.parse import urlsplit

VERIFY_PATH = "/api/v1/ssh/verify"
CHECK_PATH = "/api/v1/ssh/check"
PROMPT = "prompt"
MAX_RESPONSE = 4096

MESSAGES = {
    "en": {
        PROMPT: "Verification code: ",
        "rejected": "That code is not right, or it was already used.",
        "throttled": "Too many attempts, try again in {minutes} minutes.",
        "throttled_one": "Too many attempts, try again in 1 minute.",
        "not_enrolled": (
            "Two-factor authentication is off for your account: turn it on in the portal "
            "(Account, Security) to log in here."
        ),
        "unknown_login": "This login is not linked to an account protected by two-factor "
        "authentication.",
        "empty": "No code was entered.",
        "unavailable": "The code cannot be checked right now, try again later.",
    },
    "fr": {
        PROMPT: "Code de vérification : ",
        "rejected": "Ce code n'est pas le bon, ou il a déjà servi.",
        "throttled": "Trop de tentatives, réessayez dans {minutes} minutes.",
        "throttled_one": "Trop de tentatives, réessayez dans 1 minute.",
        "not_enrolled": (
            "La double authentification est désactivée pour votre compte : activez-la dans "
            "le portail (Compte, Sécurité) pour vous connecter ici."
        ),
        "unknown_login": "Cet identifiant n'est lié à aucun compte protégé par la double "
        "authentification.",
        "empty": "Aucun code n'a été saisi.",
        "unavailable": "Le code ne peut pas être vérifié pour le moment, réessayez plus tard.",
    },
}


class ConfigError(Exception):
    """The PAM line or the token file is wrong: the administrator must fix it."""


class Unavailable(Exception):
    """No usable answer from Keyfob."""


class Options:
    """The module's options, checked. (A plain class: pam_python runs the module without
    registering it in sys.modules, where dataclasses would look for it.)"""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        prefix: str,
        token_file: str,
        cafile: str | None = None,
        timeout: float = 5.0,
        nullok: bool = False,
        lang: str = "en",
    ) -> None:
        self.host = host
        self.port = port
        self.prefix = prefix
        self.token_file = token_file
        self.cafile = cafile
        self.timeout = timeout
        self.nullok = nullok
        self.lang = lang

    def text(self, key: str) -> str:
        return MESSAGES[self.lang][key]


def parse_options(args: list[str]) -> Options:
    """Options from the PAM line's arguments (after the module's path); raise ConfigError."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep and name == "nullok":
            flags.add(name)
        elif sep and name in {"url", "token_file", "cafile", "timeout", "lang"}:
            values[name] = value
        else:
            raise ConfigError(f"unknown option {arg!r}")
    if "url" not in values or "token_file" not in values:
        raise ConfigError("url= and token_file= are required")
    url = urlsplit(values["url"])
    if url.scheme != "https" or not url.hostname or url.query or url.fragment:
        raise ConfigError("url= must be https://host[:port][/path]")
    try:
        port = url.port or 443
        timeout = float(values.get("timeout", "5"))
    except ValueError:
        raise ConfigError("bad port in url=, or timeout= is not a number") from None
    if not 0.5 <= timeout <= 30:
        raise ConfigError("timeout= must be from 0.5 to 30 seconds")
    lang = values.get("lang", "en")
    if lang not in MESSAGES:
        raise ConfigError("lang= must be en or fr")
    return Options(
        host=url.hostname,
        port=port,
        prefix=url.path.rstrip("/"),
        token_file=values["token_file"],
        cafile=values.get("cafile") or None,
        timeout=timeout,
        nullok="nullok" in flags,
        lang=lang,
    )


def read_token(path: str) -> str:
    """The token in ``path``, which only root may read; raise ConfigError."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot open token_file {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="ascii", errors="replace") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
            raise ConfigError(f"token_file {path} must be a file of root's, mode 0600 or 0400")
        token = handle.read(200).strip()
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(f"token_file {path} holds no token")
    return token


def _left(deadline: float) -> float:
    """Seconds left before ``deadline``; raise TimeoutError (an OSError) when none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no complete answer within timeout=")
    return left


class _DeadlineSocket(ssl.SSLSocket):
    """A TLS socket whose every read and write waits only for what is left of the call's
    deadline. A socket's own timeout applies to each operation: a peer trickling a byte
    at a time would hold the login for as long as it likes."""

    deadline = math.inf

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        self.settimeout(_left(self.deadline))
        return super().recv(buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        self.settimeout(_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)

    def send(self, data: Any, flags: int = 0) -> int:
        self.settimeout(_left(self.deadline))
        return super().send(data, flags)


class _Connection(http.client.HTTPSConnection):
    """HTTPS to Keyfob under one deadline, from the connection to the answer's last byte."""

    def __init__(self, options: Options, deadline: float) -> None:
        self.tls = ssl.create_default_context(cafile=options.cafile)
        self.tls.sslsocket_class = _DeadlineSocket
        super().__init__(options.host, options.port, timeout=options.timeout, context=self.tls)
        self.deadline = deadline

    def connect(self) -> None:
        # Each address tried gets what is left (the name lookup itself is bounded by the
        # resolver's own settings: give url= an address or a name in /etc/hosts to avoid it).
        raw = socket.create_connection((self.host, self.port), _left(self.deadline))
        raw.settimeout(_left(self.deadline))  # the TLS handshake, as a whole
        try:
            sock = self.tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        cast(_DeadlineSocket, sock).deadline = self.deadline  # its class, set above
        self.sock = sock


def request(
    options: Options,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    limit: int = MAX_RESPONSE,
) -> tuple[int, bytes]:
    """One request to Keyfob with the server's token, all within ``options.timeout``:
    the answer's status and body (at most ``limit`` + 1 bytes). Raise Unavailable (and
    ConfigError for the token file). ``keyfob-ssh principals`` and ``ca-sync`` use it too."""
    token = read_token(options.token_file)
    connection = _Connection(options, time.monotonic() + options.timeout)
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": "pam_keyfob/1",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        connection.request(
            method,
            options.prefix + path,
            body=None if body is None else json.dumps(body).encode(),
            headers=headers,
        )
        response = connection.getresponse()
        raw = response.read(limit + 1)
    except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
        raise Unavailable(f"{type(exc).__name__}: {exc}") from None
    finally:
        connection.close()
    return response.status, raw


def call(options: Options, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to Keyfob; return the JSON answer of a 200, all within
    ``options.timeout``. Raise Unavailable."""
    status, raw = request(options, "POST", path, body)
    try:
        data = json.loads(raw) if len(raw) <= MAX_RESPONSE else None
    except ValueError:
        data = None
    if status != 200 or not isinstance(data, dict):
        detail = data.get("error", {}).get("code") if isinstance(data, dict) else None
        raise Unavailable(f"HTTP {status} {detail or ''}".strip())
    return data


def _printable(text: str) -> str:
    """``text`` with control characters, backslashes and anything not ASCII escaped."""
    return text.encode("unicode_escape").decode("ascii")


def _log(priority: int, text: str) -> None:
    """One syslog line. Escaped as a whole: a login is whatever the SSH client typed, and
    ``"frank\\nFAKE: root accepted"`` must not write a line of its own."""
    syslog.openlog("pam_keyfob", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
    syslog.syslog(priority, _printable(text))


def _say(pamh: Any, text: str) -> None:
    # If the client cannot show it, the login is refused all the same.
    with contextlib.suppress(pamh.exception):
        pamh.conversation(pamh.Message(pamh.PAM_ERROR_MSG, text))


def _ask_code(pamh: Any, options: Options) -> str | None:
    try:
        answer = pamh.conversation(pamh.Message(pamh.PAM_PROMPT_ECHO_OFF, options.text(PROMPT)))
    except pamh.exception:
        return None
    return answer.resp if isinstance(answer.resp, str) else None


def _client_address(pamh: Any) -> str | None:
    try:
        return str(ipaddress.ip_address(pamh.rhost or ""))
    except ValueError:
        return None


def _throttled_text(options: Options, retry_after: object) -> str:
    seconds = retry_after if isinstance(retry_after, int | float) else 60
    minutes = max(1, math.ceil(seconds / 60))
    if minutes == 1:
        return options.text("throttled_one")
    return options.text("throttled").format(minutes=minutes)


def authenticate(pamh: Any, argv: list[str]) -> int:
    try:
        options = parse_options(list(argv[1:]))
    except ConfigError as exc:
        _log(syslog.LOG_ERR, f"configuration: {exc}; refusing every login")
        return int(pamh.PAM_SERVICE_ERR)
    try:
        login = pamh.get_user(None)
    except pamh.exception:
        return int(pamh.PAM_USER_UNKNOWN)
    if not login:
        return int(pamh.PAM_USER_UNKNOWN)
    client = _client_address(pamh)

    try:
        if options.nullok:
            # Ask before prompting: an account without 2FA gets in with the key alone.
            state = call(options, CHECK_PATH, {"login": login}).get("result")
            if state == "not_enrolled":
                _log(syslog.LOG_INFO, f"{login}: no two-factor authentication, nullok")
                return int(pamh.PAM_SUCCESS)
            if state != "code_required":
                _log(syslog.LOG_NOTICE, f"{login}: {state}")
                _say(pamh, options.text("unknown_login"))
                return int(pamh.PAM_AUTH_ERR)
        code = _ask_code(pamh, options)
        if code is None:
            return int(pamh.PAM_CONV_ERR)
        code = code.strip()
        if not code:
            _say(pamh, options.text("empty"))
            return int(pamh.PAM_AUTH_ERR)
        body: dict[str, Any] = {"login": login, "code": code}
        if client:
            body["client_address"] = client
        answer = call(options, VERIFY_PATH, body)
    except ConfigError as exc:
        _log(syslog.LOG_ERR, f"{login}: {exc}; login refused")
        _say(pamh, options.text("unavailable"))
        return int(pamh.PAM_AUTHINFO_UNAVAIL)
    except Unavailable as exc:
        _log(syslog.LOG_ERR, f"{login}: Keyfob unavailable ({exc}); login refused")
        _say(pamh, options.text("unavailable"))
        return int(pamh.PAM_AUTHINFO_UNAVAIL)

    result = answer.get("result")
    _log(syslog.LOG_INFO, f"{login}: {result} from {client or 'unknown address'}")
    if result == "accepted":
        return int(pamh.PAM_SUCCESS)
    if result == "not_enrolled" and options.nullok:
        return int(pamh.PAM_SUCCESS)
    if result == "throttled":
        _say(pamh, _throttled_text(options, answer.get("retry_after")))
    elif result in {"rejected", "not_enrolled", "unknown_login"}:
        _say(pamh, options.text(str(result)))
    else:
        _say(pamh, options.text("unavailable"))
    return int(pamh.PAM_AUTH_ERR)


def pam_sm_authenticate(pamh: Any, flags: int, argv: list[str]) -> int:
    try:
        return authenticate(pamh, argv)
    except Exception as exc:  # fail closed, whatever happened
        _log(syslog.LOG_ERR, f"unexpected {type(exc).__name__}; login refused")
        return int(pamh.PAM_AUTH_ERR)


def pam_sm_setcred(pamh: Any, flags: int, argv: list[str]) -> int:
    return int(pamh.PAM_SUCCESS)
