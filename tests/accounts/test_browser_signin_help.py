""" "Can't sign in?" in headless Chromium: a customer with 2FA forgets the password, gets the
code from a real SMTP server (aiosmtpd), types it back with a new password; the other
browser is signed out, the holder is told, and the next sign-in still asks for the code."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyfob.core import clock
from tests.clients import oathtool_totp
from tests.smtp import SmtpServer
from tests.support.conftest import T0, Enrolled, enrolled
from tests.support.test_browser_desk import body, deliver, messages, settle, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a fresh and long passphrase 42"


@pytest.fixture
def alice(transactional_db: None) -> Enrolled:
    return enrolled("alice@example.com", phone="+33123456789")


def test_a_forgotten_password_is_reset_by_a_mailed_code_and_2fa_still_asked(
    page: Any, browser: Any, live_server: Any, smtp: SmtpServer, alice: Enrolled
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        # Another browser where Alice is signed in: the reset signs it out.
        other = browser.new_context(locale="en-GB").new_page()
        sign_in(other, base, "alice@example.com")
        other.get_by_label("Authentication code").fill(oathtool_totp(alice.b32, T0))
        other.get_by_role("button", name="Verify").click()
        other.wait_for_url(re.compile(r"/account/security/$"))

        page.goto(f"{base}/login/")
        page.get_by_role("link", name="Can’t sign in?").click()
        page.wait_for_url(re.compile(r"/login/help/$"))
        page.get_by_role("heading", name="I lost my authenticator").wait_for()
        page.get_by_role("heading", name="I forgot my password").wait_for()
        page.get_by_role("link", name="Choose a new password").click()
        page.get_by_label("Email").fill("alice@example.com")
        page.get_by_role("button", name="Send me a code").click()
        page.wait_for_url(re.compile(r"/login/reset/code/$"))
        assert "If an account uses alice@example.com" in page.locator("main").inner_text()

        [mail] = deliver(smtp, 1)
        assert mail["To"] == "alice@example.com"
        assert mail["Subject"] == "Keyfob: Your code to choose a new password"
        found = re.search(r"^\s+(\d{4} \d{4})$", body(mail), re.MULTILINE)
        assert found, body(mail)

        page.get_by_label("Code from the e-mail").fill(found.group(1))
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD + "!")
        page.get_by_role("button", name="Change the password").click()
        assert "The two passwords are not the same." in page.locator("main").inner_text()
        page.get_by_label("Code from the e-mail").fill(found.group(1))
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change the password").click()
        page.wait_for_url(re.compile(r"/login/$"))
        assert "Your password is changed. Sign in with it." in messages(page)

        told = deliver(smtp, 2)[1]
        assert told["Subject"] == "Keyfob: Your password was reset"
        assert "Every session was signed out" in body(told)

        other.goto(f"{base}/account/security/")
        other.wait_for_url(re.compile(r"/login/"))  # signed out there

        # The new password opens the code step, never the account by itself.
        page.get_by_label("Email").fill("alice@example.com")
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(re.compile(r"/login/code/$"))
    with clock.frozen(T0 + 30):
        page.get_by_label("Authentication code").fill(oathtool_totp(alice.b32, T0 + 30))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
    other.context.close()


def test_an_unknown_address_looks_the_same_and_its_mailbox_is_told(
    page: Any, live_server: Any, smtp: SmtpServer, alice: Enrolled
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        page.goto(f"{base}/login/reset/")
        page.get_by_label("Email").fill("nobody@example.com")
        page.get_by_role("button", name="Send me a code").click()
        page.wait_for_url(re.compile(r"/login/reset/code/$"))
        assert "If an account uses nobody@example.com" in page.locator("main").inner_text()
        [mail] = deliver(smtp, 1)
        assert mail["To"] == "nobody@example.com"
        assert "no account uses it" in body(mail)
        assert not re.search(r"\d{4} \d{4}", body(mail))
