"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the tests that send mail."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, Session


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

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

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


def accept_only(username: str, password: str) -> Callable[..., AuthResult]:
    """An aiosmtpd authenticator for one account."""

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = data.login == username.encode() and data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return authenticate
