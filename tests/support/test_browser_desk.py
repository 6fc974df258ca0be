"""The support desk in headless Chromium: staff sign in with oathtool codes, the customer
reads e-mail from a real SMTP server (aiosmtpd).

It lives here, not in tests/support, because a test process can run one Playwright at a
time: the session's ``browser`` fixture is this folder's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyfob.accounts.models import AccountKind
from keyfob.audit import mailer
from keyfob.core import clock
from keyfob.support.models import Request, State
from keyfob.twofactor import flows as twofactor
from tests.clients import oathtool_totp
from tests.smtp import SmtpServer
from tests.support.conftest import PASSWORD, T0, Enrolled, enrolled
from tests.twofactor.test_browser_recovery_trust import enable

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def staff_sign_in_with_codes(settings: Any) -> None:
    """Staff here sign in with codes from oathtool: the rule that staff pages need a security
    key or passkey (KEYFOB_STAFF_PHISHING_RESISTANT) is off for these journeys. Its own
    tests: tests/support/test_staff_rule.py, tests/twofactor/test_browser_passkeys.py."""
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False


@pytest.fixture
def alice(transactional_db: None) -> Enrolled:
    return enrolled("alice@example.com", phone="+33123456789")


@pytest.fixture
def acme(transactional_db: None) -> Enrolled:
    return enrolled("boss@acme.example", phone="+33198765432", kind=AccountKind.COMPANY)


@pytest.fixture
def sam(transactional_db: None) -> Enrolled:
    return enrolled("sam@support.example", is_staff=True)


@pytest.fixture
def tess(transactional_db: None) -> Enrolled:
    return enrolled("tess@support.example", is_staff=True)


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Another person's browser: its own cookies."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(locale="en-GB", viewport={"width": 1200, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def staff_sign_in(page: Any, base: str, staff: Enrolled, at: float) -> None:
    """Password, then a code from oathtool (staff must use 2FA), then the console."""
    sign_in(page, base, staff.user.email)
    page.wait_for_url(re.compile(r"/login/code/$"))
    page.get_by_label("Authentication code").fill(oathtool_totp(staff.b32, at))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/account/security/$"))
    page.goto(f"{base}/support/")


def messages(page: Any) -> str:
    return str(page.locator(".messages").inner_text())


def settle(smtp: SmtpServer) -> None:
    """Deliver what the ready state queued (each enrolment's "2FA is on" notice) and start
    from an empty inbox, so a test counts only the mail its own steps send."""
    smtp.inbox.wait_for(mailer.send_pending().sent)
    smtp.inbox.clear()


def deliver(smtp: SmtpServer, count: int) -> list[Any]:
    """Send what the outbox holds now; return the messages the SMTP server has received."""
    mailer.send_pending()
    received = smtp.inbox.wait_for(count)
    assert len(received) >= count, [m["Subject"] for m in received]
    return received


def body(message: Any) -> str:
    return str(message.get_body(preferencelist=("plain",)).get_content()).replace("\r\n", "\n")


def customer_asks_support(page: Any, base: str, email: str) -> None:
    sign_in(page, base, email)
    page.wait_for_url(re.compile(r"/login/code/$"))
    page.get_by_text("Lost access to your authenticator?").click()
    page.get_by_role("link", name="Ask support to turn off two-factor authentication").click()
    page.wait_for_url(re.compile(r"/support/request/$"))
    page.get_by_label("Anything support should know (optional)").fill("Call me after 6pm.")
    page.get_by_role("button", name="Ask support to turn off two-factor authentication").click()
    assert "Your request is sent to support." in messages(page)
    page.get_by_text("Your request is open.").wait_for()


def test_phone_path_then_the_customer_turns_2fa_on_again(
    page: Any,
    new_page: Any,
    live_server: Any,
    smtp: SmtpServer,
    alice: Enrolled,
    sam: Enrolled,
    tess: Enrolled,
    tmp_path: Path,
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        customer_asks_support(page, base, "alice@example.com")
        [opened] = deliver(smtp, 1)
        assert opened["To"] == "alice@example.com"
        assert "Someone who knew your password asked our support team" in body(opened)

        console = new_page()
        staff_sign_in(console, base, sam, T0)
        console.locator("#requests").get_by_role("link").first.click()
        console.get_by_text("+33123456789").first.wait_for()
        assert "Call me after 6pm." in console.locator("#summary").inner_text()
        console.get_by_label("Confirmed by the account holder").check()
        console.locator("#call").get_by_label("Note").fill("Alice answered, lost her phone.")
        console.get_by_role("button", name="Record the call").click()
        assert "The call is recorded." in messages(console)
        assert console.locator("#state").inner_text() == "State: Approved"
        # Sam recorded the check: someone else must disable.
        console.locator("#four-eyes").wait_for()
        assert console.get_by_role("button", name="Disable two-factor authentication").count() == 0

    with clock.frozen(T0 + 30):
        other = new_page()
        staff_sign_in(other, base, tess, T0 + 30)
        other.get_by_role("link", name=re.compile(r"Approved")).click()
        other.locator("#requests").get_by_role("link").first.click()
        other.locator("#disable").get_by_label("Reason").fill("Identity confirmed by phone.")
        other.get_by_role("button", name="Disable two-factor authentication").click()
        assert "Two-factor authentication is off for this account." in messages(other)
        assert other.locator("#state").inner_text() == "State: Completed"
        assert "Two-factor authentication disabled" in other.locator("#timeline").inner_text()
        subjects = [m["Subject"] for m in deliver(smtp, 2)]
        assert "Keyfob: Two-factor authentication turned off" in subjects

    with clock.frozen(T0 + 60):
        # The customer signs in with the password alone, and turns 2FA on again.
        sign_in(page, base, "alice@example.com")
        page.wait_for_url(re.compile(r"/account/security/$"))
        activity = page.locator("#activity").inner_text()
        assert "Support disabled two-factor authentication after an identity check" in activity
        secret = enable(page, base, tmp_path)
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0 + 60))
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
    assert twofactor.has_2fa(alice.user)


def test_documents_and_emailed_code_path(
    page: Any,
    new_page: Any,
    live_server: Any,
    smtp: SmtpServer,
    acme: Enrolled,
    sam: Enrolled,
    tess: Enrolled,
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        staff_sign_in(page, base, sam, T0)
        page.get_by_role("link", name="Open a request for a customer").click()
        page.get_by_label("Account's e-mail address").fill("boss@acme.example")
        page.get_by_label("How the customer asked").select_option("email")
        page.get_by_role("button", name="Open the request").click()
        assert "The request is open. The customer was e-mailed." in messages(page)
        [opened] = deliver(smtp, 1)
        assert "Our support team opened a request" in body(opened)

        page.get_by_label("No answer or wrong number").check()
        page.get_by_role("button", name="Record the call").click()
        assert page.locator("#state").inner_text() == "State: Waiting for the customer"
        for kind, note in [("registration", "Kbis of 2026-02"), ("manager_identity", "ID card")]:
            item = page.locator(f"#document-{kind}")
            item.get_by_label("Received from the profile's e-mail address, and verified").check()
            item.get_by_label("Note").fill(note)
            item.get_by_role("button", name="Mark verified").click()
            assert "The document is marked verified." in messages(page)
        assert "Verified by sam@support.example" in page.locator("#documents").inner_text()

        page.get_by_role("button", name="Send a code to the profile's e-mail address").click()
        assert "A new code is on its way to boss@acme.example." in messages(page)
        mail = deliver(smtp, 2)[-1]
        assert mail["To"] == "boss@acme.example"
        assert mail["Subject"] == "Keyfob: Your verification code for support"
        found = re.search(r"^\s+(\d{4} \d{4})$", body(mail), re.MULTILINE)
        assert found, body(mail)
        code = found.group(1)

        wrong = "1111 1111" if code != "1111 1111" else "2222 2222"
        page.get_by_label("Code the customer read back").fill(wrong)
        page.get_by_role("button", name="Check the code").click()
        assert "4 tries left before it stops working" in messages(page)
        page.get_by_label("Code the customer read back").fill(code)
        page.get_by_role("button", name="Check the code").click()
        assert "The code is right." in messages(page)
        assert page.locator("#state").inner_text() == "State: Approved"
        page.locator("#four-eyes").wait_for()

    with clock.frozen(T0 + 30):
        other = new_page()
        staff_sign_in(other, base, tess, T0 + 30)
        other.get_by_role("link", name=re.compile(r"Approved")).click()
        other.locator("#requests").get_by_role("link").first.click()
        other.locator("#disable").get_by_label("Reason").fill(
            "Kbis, manager's ID and e-mailed code checked."
        )
        other.get_by_role("button", name="Disable two-factor authentication").click()
        assert "Two-factor authentication is off for this account." in messages(other)
        assert "Keyfob: Two-factor authentication turned off" in [
            m["Subject"] for m in deliver(smtp, 3)
        ]

    with clock.frozen(T0 + 60):
        customer = new_page()
        sign_in(customer, base, "boss@acme.example")
        customer.wait_for_url(re.compile(r"/account/security/$"))
        assert "Two-factor authentication is off." in customer.locator(".status").inner_text()


def test_the_customer_cancels_from_the_emailed_link(
    page: Any,
    new_page: Any,
    live_server: Any,
    smtp: SmtpServer,
    alice: Enrolled,
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        customer_asks_support(page, base, "alice@example.com")
        [opened] = deliver(smtp, 1)
        found = re.search(r"(http://\S+/support/cancel/\S+/)", body(opened))
        assert found, body(opened)
        # The mail is read elsewhere, signed out.
        reader = new_page()
        reader.goto(found.group(1))
        assert Request.objects.get().state == State.OPEN  # opening the link changes nothing
        reader.get_by_role("button", name="Cancel the request").click()
        assert "The request is cancelled. Nothing was changed." in messages(reader)
        assert "no longer in progress: Cancelled" in reader.locator("#request-state").inner_text()
    assert Request.objects.get().state == State.CANCELLED
    assert twofactor.has_2fa(alice.user)
