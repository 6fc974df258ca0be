"""A form sent without a recent confirmation is kept, and applied once confirmed (issue 24,
"a change asked again after 'Confirm it is you' is lost"): only on its own page, only once,
only soon, never with a secret in the session, never without the confirmation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from keyfob.accounts.decorators import CARRIED_KEY
from keyfob.accounts.models import User
from keyfob.core import clock
from tests.conftest import PASSWORD, make_user, password_step

pytestmark = pytest.mark.django_db

STALE = settings.KEYFOB_REAUTH_SECONDS + 60
PROFILE = {"display_name": "Alice", "language": "", "time_zone": "UTC", "kind": "individual"}
NEW = "a fresh and long passphrase 42"


@pytest.fixture
def alice(db: None) -> User:
    return make_user("alice@example.com", phone="+33123456789")


def carried_to(response: Any) -> str:
    """The page (with its one-time number) that "Confirm it is you" sends back to."""
    found = re.fullmatch(
        r"/account/confirm/\?next=(%2F[\w%-]*%3Fcarried%3D[\w-]+)", response["Location"]
    )
    assert found, response["Location"]
    return found.group(1).replace("%2F", "/").replace("%3F", "?").replace("%3D", "=")


def confirm(client: Client, back: str) -> None:
    response = client.post("/account/confirm/", {"password": PASSWORD, "next": back})
    assert response["Location"] == back


def session_text(client: Client) -> str:
    return json.dumps(Session.objects.get(session_key=client.session.session_key).get_decoded())


def test_applied_once_on_its_own_page_after_the_confirmation(
    client: Client, alice: User, frozen_time: float
) -> None:
    password_step(client)
    with clock.frozen(frozen_time + STALE):
        back = carried_to(client.post("/account/", {**PROFILE, "phone": "+33699999999"}))
        alice.refresh_from_db()
        assert alice.phone == "+33123456789"
        confirm(client, back)
        assert client.get(back)["Location"] == "/account/"
        alice.refresh_from_db()
        assert alice.phone == "+33699999999"
        # Once: the same link again changes nothing and says so.
        alice.phone = "+33100000000"
        alice.save()
        response = client.get(back, follow=True)
        assert "Nothing was changed. Please make your change again." in response.content.decode()
        alice.refresh_from_db()
        assert alice.phone == "+33100000000"


def test_a_wrong_number_or_another_page_applies_nothing(
    client: Client, alice: User, frozen_time: float
) -> None:
    password_step(client)
    with clock.frozen(frozen_time + STALE):
        back = carried_to(client.post("/account/", {**PROFILE, "phone": "+33699999999"}))
        confirm(client, back)
        guessed = client.get("/account/?carried=guessed").content.decode()
        assert "Nothing was changed. Please make your change again." in guessed
        # The kept form went with the wrong try: the right number now finds nothing either.
        assert "Nothing was changed." in client.get(back).content.decode()
    alice.refresh_from_db()
    assert alice.phone == "+33123456789"


def test_a_kept_form_goes_stale(client: Client, alice: User, frozen_time: float) -> None:
    password_step(client)
    with clock.frozen(frozen_time + STALE):
        back = carried_to(client.post("/account/", {**PROFILE, "phone": "+33699999999"}))
    with clock.frozen(frozen_time + STALE + 3 * settings.KEYFOB_REAUTH_SECONDS):
        confirm(client, back)
        client.get(back)
    alice.refresh_from_db()
    assert alice.phone == "+33123456789"


def test_a_new_password_is_never_written_into_the_session(
    client: Client, alice: User, frozen_time: float
) -> None:
    password_step(client)
    with clock.frozen(frozen_time + STALE):
        response = client.post("/account/password/", {"new_password1": NEW, "new_password2": NEW})
        assert response["Location"] == "/account/confirm/?next=%2Faccount%2Fpassword%2F"
        assert NEW not in session_text(client)
        assert CARRIED_KEY not in client.session
        confirm(client, "/account/password/")
        assert client.get("/account/password/").status_code == 200
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_a_button_with_no_page_of_its_own_is_pressed_after_the_confirmation(
    client: Client, alice: User, frozen_time: float
) -> None:
    """Revoking every trusted browser (a POST-only address): the guard turns the way back
    into the press it was; without a kept press, the Security page."""
    password_step(client)
    with clock.frozen(frozen_time + STALE):
        back = carried_to(client.post("/account/security/browsers/revoke/"))
        confirm(client, back)
        response = client.get(back)
        assert response["Location"] == "/account/security/"
        assert "are no longer trusted" in client.get("/account/security/").content.decode()
        assert client.get(back)["Location"] == "/account/security/"  # nothing left: no 405


def test_a_script_s_request_is_not_kept(client: Client, alice: User, frozen_time: float) -> None:
    password_step(client)
    with clock.frozen(frozen_time + STALE):
        response = client.post("/account/security/keys/options/", HTTP_ACCEPT="application/json")
        assert response["Location"] == "/account/confirm/?next=%2Faccount%2Fsecurity%2F"
        assert CARRIED_KEY not in client.session
