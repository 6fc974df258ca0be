"""A customer who no longer reaches their mailbox (issue 24), in headless Chromium through a
real SMTP server (aiosmtpd): the request from "Can't sign in?", the code to the new address,
the case handled by two staff members (one records the call, the other changes the
address), the notices on both addresses, then the customer resets the password through the
new address and is still asked for the second factor. axe finds nothing serious or critical
on the new pages (English and French)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyfob.accounts.models import User
from keyfob.core import clock
from keyfob.support.models import Purpose, Request, State
from tests.site.test_browser_a11y import serious_violations
from tests.smtp import SmtpServer
from tests.support.conftest import T0, Enrolled, enrolled
from tests.support.test_browser_desk import (
    body,
    deliver,
    messages,
    new_page,  # noqa: F401 (a fixture)
    settle,
    staff_sign_in,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW = "alice@new.example"
NEW_PASSWORD = "a fresh and long passphrase 24"


@pytest.fixture(autouse=True)
def staff_sign_in_with_codes(settings: Any) -> None:
    """Staff here sign in with codes from oathtool (see test_browser_desk.py)."""
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False


@pytest.fixture
def alice(transactional_db: None) -> Enrolled:
    return enrolled("alice@example.com", phone="+33123456789")


@pytest.fixture
def sam(transactional_db: None) -> Enrolled:
    return enrolled("sam@support.example", is_staff=True)


@pytest.fixture
def tess(transactional_db: None) -> Enrolled:
    return enrolled("tess@support.example", is_staff=True)


def mailed_code(message: Any) -> str:
    found = re.search(r"^\s+(\d{4}) (\d{4})$", body(message), re.MULTILINE)
    assert found, body(message)
    return found.group(1) + found.group(2)


def no_serious(page: Any) -> None:
    assert serious_violations(page) == [], page.url


def ask(page: Any, base: str, account: str, new: str, lost: str) -> None:
    """From the sign-in page, through "Can't sign in?", to the code page."""
    page.goto(f"{base}/login/")
    page.get_by_role("link", name="Can’t sign in?").click()
    page.get_by_role("link", name="I no longer have access to my e-mail address").click()
    page.wait_for_url(re.compile(r"/support/lost-email/$"))
    no_serious(page)
    page.get_by_label("The e-mail address you lost, or the phone number on your profile").fill(
        account
    )
    page.get_by_label("Your new e-mail address").fill(new)
    page.get_by_label(lost).check()
    page.get_by_role("button", name="Send a code to my new address").click()
    page.wait_for_url(re.compile(r"/support/lost-email/code/$"))


def test_the_whole_journey(
    page: Any,
    new_page: Any,  # noqa: F811
    live_server: Any,
    smtp: SmtpServer,
    alice: Enrolled,
    sam: Enrolled,
    tess: Enrolled,
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        ask(page, base, "alice@example.com", NEW, "My password too")
        no_serious(page)
        assert f"We e-mailed a code to {NEW}." in page.locator("main").inner_text()
        [coded] = deliver(smtp, 1)
        assert coded["To"] == NEW
        assert coded["Subject"] == "Keyfob: Confirm this address for your request to support"
        page.get_by_label("Code from the e-mail").fill(mailed_code(coded))
        page.get_by_role("button", name="Send my request to support").click()
        page.wait_for_url(re.compile(r"/support/lost-email/sent/$"))
        no_serious(page)
        steps = page.locator("#next-steps").inner_text()
        assert "Support calls the phone number on the account's profile." in steps
        assert "Support never sets a password" in steps
        # The account's own address hears of it (with a link to cancel); the new one hears
        # what happens next.
        mails = {m["To"]: m for m in deliver(smtp, 3)[1:]}
        assert set(mails) == {"alice@example.com", NEW}
        assert f"asked to make {NEW} the sign-in address" in body(mails["alice@example.com"])
        assert "/support/cancel/" in body(mails["alice@example.com"])
        assert "What happens next:" in body(mails[NEW])
        req = Request.objects.get(user=alice.user, purpose=Purpose.EMAIL)

        # Sam calls the number on the profile and records it.
        console = new_page()
        staff_sign_in(console, base, sam, T0)
        console.goto(f"{base}/support/{req.pk}/")
        assert f"New address: {NEW}" in console.locator("#purpose").inner_text()
        no_serious(console)
        console.get_by_label("Confirmed by the account holder").check()
        console.get_by_role("button", name="Record the call").click()
        assert "The call is recorded." in messages(console)
        console.locator("#four-eyes").wait_for()
        assert console.get_by_role("button", name="Change the sign-in address").count() == 0
        # The news to both addresses; Tess, who may finish it, is told it waits for her.
        news = {m["To"]: m for m in deliver(smtp, 6)[3:]}
        assert set(news) == {"alice@example.com", NEW, "tess@support.example"}
        assert "to change the sign-in address of a customer" in body(news["tess@support.example"])
        assert "Next, another member of support changes the sign-in address" in body(news[NEW])

    with clock.frozen(T0 + 30):
        # Tess finds it waiting for her, and changes the address.
        other = new_page()
        staff_sign_in(other, base, tess, T0 + 30)
        other.locator("#waiting").get_by_role("link").first.click()
        other.locator("#change-address").get_by_label("Reason").fill("Confirmed by phone.")
        no_serious(other)
        other.get_by_role("button", name="Change the sign-in address").click()
        assert "The sign-in address is changed." in messages(other)
        assert other.locator("#state").inner_text() == "State: Completed"
        changed = deliver(smtp, 8)[6:]
        assert {m["To"] for m in changed} == {"alice@example.com", NEW}
        for mail in changed:
            assert mail["Subject"] == "Keyfob: Your sign-in address was changed by support"
            text = body(mail)
            assert f"from alice@example.com to {NEW}" in text
            assert "check your authenticators" in text
    assert Request.objects.get(pk=req.pk).state == State.COMPLETED
    assert User.objects.get(pk=alice.user.pk).email == NEW

    with clock.frozen(T0 + 60):
        # The customer chooses a new password through the new address...
        page.goto(f"{base}/login/reset/")
        page.get_by_label("Email").fill(NEW)
        page.get_by_role("button", name="Send me a code").click()
        page.wait_for_url(re.compile(r"/login/reset/code/$"))
        reset = deliver(smtp, 9)[8]
        assert reset["To"] == NEW
        page.get_by_label("Code from the e-mail").fill(mailed_code(reset))
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password again").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change the password").click()
        assert "Your password is changed." in messages(page)
        # ... and signing in still asks for the second factor.
        page.goto(f"{base}/login/")
        page.get_by_label("Email").fill(NEW)
        page.get_by_label("Password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(re.compile(r"/login/code/$"))
        assert page.get_by_label("Authentication code").count() == 1


def test_an_unknown_address_and_junk(
    page: Any, live_server: Any, smtp: SmtpServer, alice: Enrolled
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        page.goto(f"{base}/support/lost-email/")
        page.get_by_role("button", name="Send a code to my new address").click()
        text = page.locator("main").inner_text()
        assert "Enter the address you lost, or the phone number on your profile." in text
        assert "Say whether you also lost your password or your authenticator." in text
        no_serious(page)
        page.get_by_label("The e-mail address you lost, or the phone number on your profile").fill(
            "12 34"
        )
        page.get_by_label("Your new e-mail address").fill("not-an-address")
        page.get_by_label("Nothing else").check()
        page.get_by_role("button", name="Send a code to my new address").click()
        text = page.locator("main").inner_text()
        assert "phone number in international form" in text
        assert "Enter a valid e-mail address." in text
        assert smtp.inbox.messages == []

        # No account uses this address: the same pages, the same mails to the new address.
        ask(page, base, "nobody@example.com", "n@new.example", "Nothing else")
        [coded] = deliver(smtp, 1)
        page.get_by_label("Code from the e-mail").fill(mailed_code(coded))
        page.get_by_role("button", name="Send my request to support").click()
        page.wait_for_url(re.compile(r"/support/lost-email/sent/$"))
        [received] = deliver(smtp, 2)[1:]
        assert received["To"] == "n@new.example" and "What happens next:" in body(received)
    assert not Request.objects.exists()


def test_the_new_pages_in_french(page: Any, live_server: Any, smtp: SmtpServer) -> None:
    base = live_server.url
    page.context.add_cookies([{"name": "django_language", "value": "fr", "url": base}])
    with clock.frozen(T0):
        page.goto(f"{base}/login/help/")
        page.get_by_role("link", name="Je n’ai plus accès à mon adresse e-mail").click()
        page.wait_for_url(re.compile(r"/support/lost-email/$"))
        no_serious(page)
        page.get_by_role("button", name="Envoyer un code à ma nouvelle adresse").click()
        assert "Indiquez l’adresse perdue" in page.locator("main").inner_text()
        no_serious(page)
        page.get_by_label(
            "L’adresse e-mail perdue, ou le numéro de téléphone de votre profil"
        ).fill("nobody@example.com")
        page.get_by_label("Votre nouvelle adresse e-mail").fill("n@new.example")
        page.get_by_label("Mon authentificateur aussi", exact=True).check()
        page.get_by_role("button", name="Envoyer un code à ma nouvelle adresse").click()
        page.wait_for_url(re.compile(r"/support/lost-email/code/$"))
        no_serious(page)
        [coded] = deliver(smtp, 1)
        assert coded["Subject"] == "Keyfob: Confirmez cette adresse pour votre demande au support"
        page.get_by_label("Code reçu par e-mail").fill(mailed_code(coded))
        page.get_by_role("button", name="Envoyer ma demande au support").click()
        page.wait_for_url(re.compile(r"/support/lost-email/sent/$"))
        no_serious(page)
        assert (
            "l’authentification à deux facteurs est désactivée" in page.locator("main").inner_text()
        )
