"""After support turned 2FA off, each sign-in invites the customer to turn it on again; and
turning it on asks for the phone number support would call, when the profile has none."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor import flows
from tests.conftest import Enrolled, confirmed_request, make_user, password_step

INVITE = "Support turned off two-factor authentication for you"


def signed_in_page(client: Client, email: str = "alice@example.com") -> str:
    response = password_step(client, email)
    return client.get(response["Location"]).content.decode()


def test_after_support_turned_2fa_off_sign_in_invites_to_turn_it_on_again(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    flows.disable_by_support(user_with_totp.user, Context())
    page = signed_in_page(client)
    assert INVITE in page and 'href="/account/security/setup/"' in page
    # Turned on again: no more invitation.
    client.post("/logout/")
    with clock.frozen(frozen_time + 60):
        auth = flows.start_setup(user_with_totp.user, "totp")
        code = otp.totp(auth.secret(), frozen_time + 60)
        request = confirmed_request(user_with_totp.user)
        flows.confirm_setup(request, user_with_totp.user, code, Context())
    assert flows.turned_off_by_support(user_with_totp.user) is False


def test_no_invitation_when_the_customer_turned_it_off_or_never_had_it(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    flows.disable(confirmed_request(user_with_totp.user), user_with_totp.user, Context())
    assert INVITE not in signed_in_page(client)
    make_user("bob@example.com")
    assert INVITE not in signed_in_page(Client(), "bob@example.com")


@pytest.mark.django_db
def test_turning_2fa_on_asks_for_a_phone_number_first(client: Client, frozen_time: float) -> None:
    bob = make_user("bob@example.com")
    password_step(client, "bob@example.com")  # a fresh password: no second one asked
    response = client.get("/account/security/setup/")
    assert response["Location"] == "/account/security/setup/phone/"
    page = client.get("/account/security/setup/phone/").content.decode()
    assert "support calls this number" in page and 'type="tel"' in page
    assert 'autocomplete="tel"' in page

    bad = client.post("/account/security/setup/phone/", {"phone": "06 12"}).content.decode()
    assert "international form" in bad
    bob.refresh_from_db()
    assert bob.phone == ""

    response = client.post("/account/security/setup/phone/", {"phone": "+33 6 12 34 56 42"})
    assert response["Location"] == "/account/security/setup/"
    bob.refresh_from_db()
    assert bob.phone == "+33612345642"
    assert SecurityEvent.objects.filter(
        user=bob, kind=EventKind.PROFILE_CHANGED, detail__fields=["phone"]
    ).exists()
    assert client.get("/account/security/setup/").status_code == 200


@pytest.mark.django_db
def test_the_customer_may_go_on_without_a_phone(client: Client, frozen_time: float) -> None:
    make_user("bob@example.com")
    password_step(client, "bob@example.com")
    response = client.post("/account/security/setup/phone/", {"skip": "1"})
    assert response["Location"] == "/account/security/setup/"
    assert client.get("/account/security/setup/").status_code == 200
    assert User.objects.get(email="bob@example.com").phone == ""


@pytest.mark.django_db
def test_giving_the_phone_needs_a_fresh_password(client: Client, frozen_time: float) -> None:
    make_user("bob@example.com")
    password_step(client, "bob@example.com")
    with clock.frozen(frozen_time + 700):
        response = client.post("/account/security/setup/phone/", {"phone": "+33612345642"})
    assert response["Location"].startswith("/account/confirm/")
    assert User.objects.get(email="bob@example.com").phone == ""
