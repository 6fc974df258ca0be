"""A real SMTP server (aiosmtpd) on 127.0.0.1, and accounts to send notices to."""

from __future__ import annotations

import datetime
import email
import email.policy
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, Session

from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.audit.notices import NoticeKind
from tests.tls import Tls, write_tls

# A fixed moment in the middle of a minute, far from any daylight-saving change.
T0 = datetime.datetime(2026, 3, 10, 14, 5, 30, tzinfo=datetime.UTC).timestamp()
# The security notices of issue 4; other apps add kinds (and their templates) of their own.
SECURITY_NOTICES = [
    NoticeKind.TWOFACTOR_ON,
    NoticeKind.TWOFACTOR_OFF,
    NoticeKind.RECOVERY_USED,
    NoticeKind.RECOVERY_REGENERATED,
    NoticeKind.WRONG_CODES,
    NoticeKind.TRUSTED_BROWSER,
    NoticeKind.PASSWORD_CHANGED,
    NoticeKind.EMAIL_CHANGED,
]
CONTEXT = Context(
    address="203.0.113.7",
    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
)


class Inbox:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [m for _rcpt, m in self.received]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


class SmtpServer:
    """One aiosmtpd server on a fixed 127.0.0.1 port, which may be started late."""

    def __init__(self, port: int, **smtp_options: Any) -> None:
        self.port = port
        self.inbox = Inbox()
        self.options = smtp_options
        self._controller: Controller | None = None

    def start(self) -> None:
        assert self._controller is None
        controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            ready_timeout=5.0,
            **self.options,
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def url(self, scheme: str = "smtp", credentials: str = "") -> str:
        return f"{scheme}://{credentials}127.0.0.1:{self.port}"


def free_port() -> int:
    """A port nothing listens on (right now) on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def make_server() -> Iterator[Callable[..., SmtpServer]]:
    """Build servers on free ports (not started); every one is stopped at the end."""
    made: list[SmtpServer] = []

    def make(**smtp_options: Any) -> SmtpServer:
        server = SmtpServer(free_port(), **smtp_options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def smtp(make_server: Callable[..., SmtpServer], settings: Any) -> SmtpServer:
    """A running plain SMTP server that KEYFOB_SMTP_URL points at."""
    server = make_server()
    server.start()
    settings.KEYFOB_SMTP_URL = server.url()
    return server


@pytest.fixture
def frozen() -> Iterator[float]:
    from keyfob.core import clock

    with clock.frozen(T0):
        yield T0


def make_user(email_address: str = "alice@example.com", **fields: Any) -> User:
    return User.objects.create_user(email_address, None, display_name="Alice", **fields)


@pytest.fixture
def alice(db: None) -> User:
    return make_user()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return write_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server_tls(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The server side's TLS context; the client trusts its CA via SSL_CERT_FILE."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    # OpenSSL reads it each time a default context is made: Keyfob's client trusts it.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    return context


def accept_only(username: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator for one account."""

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = data.login == username.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return authenticate
