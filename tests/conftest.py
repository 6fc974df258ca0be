"""Suite-wide rules (strict mode), the helpers every app's tests share (free ports, waiting
for a server, the real tools), and ready state built through Keyfob's own flows: accounts,
enrolment, recovery codes, a client past the password step, a browser and a mail server."""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django.test import Client

    from keyfob.accounts.models import User
    from tests.smtp import SmtpServer

STRICT = os.environ.get("KEYFOB_STRICT_TESTS") == "1"


def require_tool(name: str) -> str:
    """Return the path of a system tool, or skip the test saying which package provides it.

    In strict mode (CI) the skip turns into a failure, see pytest_runtest_makereport.
    """
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it when run as root)")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"KEYFOB_STRICT_TESTS=1: a skipped test is a failure ({reason})"


def wait_until_serving(server: Any, process: Any, log: Path, timeout: float) -> Any:
    """Poll ``server``'s /healthz until it answers 200; fail with its log otherwise.

    ``server`` has ``request(method, path) -> (status, …)`` and ``stop()``; ``process`` is
    its ``subprocess.Popen``. Shared by every test that starts ``keyfob serve``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"keyfob serve exited ({process.returncode}): {log.read_text()}")
        try:
            if server.request("GET", "/healthz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"keyfob serve did not answer within {timeout} s: {log.read_text()}")


def free_port() -> int:
    """A port nothing listens on (right now) on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Accounts, built through Keyfob's own flows -------------------------------------------

PASSWORD = "correct horse battery staple"
# A fixed moment in the middle of a 30-second step, so a test's codes never straddle two.
T0 = (int(time.time()) // 30) * 30 + 15.0


@dataclass
class Enrolled:
    """An account with 2FA on, its secret (to make codes) and its first recovery codes."""

    user: User
    secret: bytes
    recovery_codes: list[str] = field(default_factory=list)

    @property
    def b32(self) -> str:
        from keyfob import otp

        return otp.b32encode_secret(self.secret)

    def code(self, at: float | None = None) -> str:
        from keyfob import otp
        from keyfob.core import clock

        return otp.totp(self.secret, clock.time() if at is None else at)


def make_user(email: str, password: str | None = PASSWORD, **fields: Any) -> User:
    """A new account (``display_name`` defaults to the address's local part, titled)."""
    from keyfob.accounts.models import User

    fields.setdefault("display_name", email.split("@")[0].title())
    return User.objects.create_user(email, password, **fields)


def confirmed_now(request: Any, user: User, *factors: str) -> None:
    """As if ``user`` had just signed in, in the session of ``request`` (a RequestFactory
    request, its ``session`` set), with the password and ``factors`` (default: a security
    key, which every rule of a recent authentication accepts): through the proofs API, the
    sign-in record a real sign-in writes."""
    from keyfob.accounts import proofs
    from keyfob.accounts.models import Factor

    request.user = user
    made = [proofs.Made(Factor(f)) for f in (factors or [Factor.SECURITY_KEY])]
    proofs.start(request, user, [proofs.PASSWORD, *made])


def confirmed_request(user: User) -> Any:
    """A request in a session of its own where ``user`` has just confirmed it is them
    (:func:`confirmed_now`): what the flows of sensitive changes ask for."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.1", HTTP_USER_AGENT="tests")
    request.session = SessionStore()
    confirmed_now(request, user)
    # The request is thrown away once used: its session's row (saved for the key the
    # record is found by) would only show up in the tests that count sessions.
    request.session.delete(request.session.session_key)
    return request


def done_with(request: Any) -> None:
    """End the sign-in record of a :func:`confirmed_request` (its session is gone): it is
    not one of the account's sessions for the tests that list or count them."""
    from keyfob.accounts import proofs
    from keyfob.accounts.models import SignIn
    from keyfob.core import clock

    digest = proofs.digest(request.session.session_key)
    SignIn.objects.filter(session_digest=digest).update(ended_at=clock.now())


def prove_for_client(client: Client, user: User, *factors: str) -> None:
    """:func:`confirmed_now` for the session of a test ``client`` (after ``force_login``)."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = client.session
    confirmed_now(request, user, *factors)


def session_proofs(client: Client) -> list[str]:
    """The factors of the live proofs the session of ``client`` holds, oldest first."""
    from django.test import RequestFactory

    from keyfob.accounts import proofs
    from keyfob.accounts.models import User as UserModel

    request = RequestFactory().get("/")
    request.session = client.session
    uid = request.session.get("_auth_user_id")
    if uid is None:
        return []
    request.user = UserModel.objects.get(pk=uid)
    return [p.factor for p in proofs.live_proofs(request)]


def enrol(user: User, kind: str = "totp", name: str = "") -> Enrolled:
    """Turn 2FA on for ``user`` (``kind`` "totp" or "hotp") the way the Security page does:
    a pending secret, then a code from it confirmed. Done two minutes before the clock's now
    (or before T0, if that is earlier: a slow run's real clock passes T0), so the step it
    spends is behind every code a test then types. On an account with 2FA on, this adds one
    more authenticator app (``name``), and its ``recovery_codes`` are empty."""
    from keyfob import otp
    from keyfob.audit.events import Context
    from keyfob.core import clock
    from keyfob.twofactor import flows

    at = min(clock.time(), T0) - 120
    with clock.frozen(at):
        auth = flows.start_setup(user, kind, name)
        secret = auth.secret()
        # A counter-based app shows the code of counter 0 first; the next one is counter 1.
        code = otp.hotp(secret, 0) if kind == "hotp" else otp.totp(secret, at)
        request = confirmed_request(user)
        codes = flows.confirm_setup(
            request, user, code, Context(address="192.0.2.1", user_agent="tests")
        )
        done_with(request)
    return Enrolled(user, secret, codes)


@pytest.fixture
def frozen_time() -> Iterator[float]:
    from keyfob.core import clock

    with clock.frozen(T0):
        yield T0


@pytest.fixture
def user(db: None) -> User:
    return make_user("alice@example.com", display_name="Alice", phone="+33123456789")


@pytest.fixture
def user_with_totp(user: User) -> Enrolled:
    return enrol(user)


def password_step(client: Client, email: str = "alice@example.com", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/login/", {"email": email, "password": password})


def setup_page(client: Client, kind: str = "totp") -> str:
    """Press the setup page's button that creates the key (a POST); the page it shows."""
    response = client.post("/account/security/setup/", {"kind": kind})
    assert response.status_code == 302 and response["Location"] == "/account/security/setup/"
    return client.get("/account/security/setup/").content.decode()


@pytest.fixture
def pending_client(client: Client, user_with_totp: Enrolled, frozen_time: float) -> Client:
    """A client past the password step of an account with 2FA."""
    response = password_step(client)
    assert response.status_code == 302 and response["Location"] == "/login/code/"
    return client


def emailed_code(user: User) -> str:
    """The code of the latest e-mail confirmation notice, read as its recipient reads it."""
    from keyfob.audit import notices
    from keyfob.audit.models import NoticeKind, Outbox

    row = Outbox.objects.filter(user=user, kind=NoticeKind.EMAIL_CONFIRM).order_by("-pk")[0]
    found = re.search(r"^\s+(\d{4}) (\d{4})$", notices.render(row).text, re.MULTILINE)
    assert found, notices.render(row).text
    return found.group(1) + found.group(2)


# A real mail server and a real browser --------------------------------------------------


@pytest.fixture
def make_server() -> Iterator[Callable[..., SmtpServer]]:
    """Build SMTP servers on free ports (not started); every one is stopped at the end."""
    from tests.smtp import SmtpServer

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
    """A running plain SMTP server (aiosmtpd) that KEYFOB_SMTP_URL points at."""
    server = make_server()
    server.start()
    settings.KEYFOB_SMTP_URL = server.url()
    return server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright (one for the whole run)."""
    from playwright.sync_api import sync_playwright

    from tests.clients import CHROMIUM_ARGS

    chromium = require_tool("chromium")
    # Playwright's sync API runs an event loop in the test thread; the ORM calls the tests
    # make there (creating accounts) are plain synchronous calls, so Django's guard does not
    # apply.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=30_000)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1200, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()
