"""What a walk through every journey found (issue 24), each in headless Chromium: a change
asked again after "Confirm it is you" is applied, not lost; the error summary says why."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyfob.accounts.models import User
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from tests.clients import oathtool_totp
from tests.smtp import SmtpServer
from tests.support.conftest import PASSWORD, T0, Enrolled, enrolled
from tests.support.test_browser_desk import body, deliver, messages, settle, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Long after the sign-in's confirmation (KEYFOB_REAUTH_SECONDS is 600 by default).
LATER = T0 + 900


@pytest.fixture
def alice(transactional_db: None) -> Enrolled:
    return enrolled("alice@example.com")


def signed_in(page: Any, base: str, who: Enrolled) -> None:
    sign_in(page, base, who.user.email)
    page.wait_for_url(re.compile(r"/login/code/$"))
    page.get_by_label("Authentication code").fill(oathtool_totp(who.b32, T0))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/account/security/$"))


def confirm(page: Any, who: Enrolled, at: float) -> None:
    page.wait_for_url(re.compile(r"/account/confirm/"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authentication code").fill(oathtool_totp(who.b32, at))
    page.get_by_role("button", name="Confirm").click()


def test_a_phone_number_typed_before_the_confirmation_is_saved_after_it(
    page: Any, live_server: Any, smtp: SmtpServer, alice: Enrolled
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        signed_in(page, base, alice)
    with clock.frozen(LATER):
        page.goto(f"{base}/account/")
        page.get_by_label("Phone number").fill("+33612345678")
        page.get_by_label("Name").fill("Alice Martin")
        page.get_by_role("button", name="Save").click()
        assert "Confirm it is you to change the phone number" in messages(page)
        confirm(page, alice, LATER)
        page.wait_for_url(re.compile(r"/account/$"))
        assert "Your profile is saved." in messages(page)
        assert page.get_by_label("Phone number").input_value() == "+33612345678"
        assert page.get_by_label("Name").input_value() == "Alice Martin"
        [notice] = deliver(smtp, 1)
        assert notice["Subject"] == "Keyfob: Phone number or account kind changed"
        assert "+33 6 •• •• •• 78" in body(notice)
    user = User.objects.get(pk=alice.user.pk)
    assert (user.phone, user.display_name) == ("+33612345678", "Alice Martin")
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.PROFILE_CHANGED).count() == 1


def test_a_button_pressed_before_the_confirmation_is_applied_after_it(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    """A guarded form of the Security pages (renaming an app): the same."""
    base = live_server.url
    app = alice.user.authenticators.get()
    with clock.frozen(T0):
        signed_in(page, base, alice)
        page.goto(f"{base}/account/security/apps/{app.pk}/rename/")
    with clock.frozen(LATER):
        page.get_by_label("Name").fill("Work phone")
        page.get_by_role("button", name="Rename").click()
        confirm(page, alice, LATER)
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert "The authenticator app is renamed." in messages(page)
    app.refresh_from_db()
    assert app.name == "Work phone"


def test_a_new_password_is_never_kept_while_confirming(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    """A password typed before the confirmation is not written into the session: the page
    says to type it again, and comes back empty."""
    base = live_server.url
    with clock.frozen(T0):
        signed_in(page, base, alice)
        page.goto(f"{base}/account/password/")
    with clock.frozen(LATER):
        page.get_by_label("New password", exact=True).fill("a fresh and long passphrase 42")
        page.get_by_label("New password again").fill("a fresh and long passphrase 42")
        page.get_by_role("button", name="Change password").click()
        assert "what you typed is not kept" in messages(page)
        confirm(page, alice, LATER)
        page.wait_for_url(re.compile(r"/account/password/$"))
        assert page.get_by_label("New password", exact=True).input_value() == ""
    assert User.objects.get(pk=alice.user.pk).check_password(PASSWORD)
