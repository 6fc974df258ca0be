"""KEYFOB_STAFF_PHISHING_RESISTANT: staff pages need a sign-in made with a security key or
passkey (on, the default), or any second factor (off). Real sign-ins through the pages with
Django's test client; the browser's side is tests/twofactor/test_browser_passkeys.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from keyfob.accounts.models import SignIn, User
from keyfob.core import clock
from tests.conftest import PASSWORD, Enrolled, make_user, session_proofs
from tests.support.conftest import enrolled
from tests.twofactor.passkeys import HOST, ORIGIN, register
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db

STAFF_PAGE = "/support/"
ADD_KEY = "/account/security/keys/add/"
CONFIRM = "/account/confirm/?next=%2Fsupport%2F"
STAFF_KEY = "/account/security/staff-key/?next=%2Fsupport%2F"


def with_code(who: Enrolled) -> Client:
    """A browser signed in with the password and a code from the authenticator app."""
    client = Client(HTTP_HOST=HOST)
    response = client.post("/login/", {"email": who.user.email, "password": PASSWORD})
    assert response["Location"] == "/login/code/"
    # ?app=1: the app's code even where the code step offers the account's key first.
    assert client.post("/login/code/?app=1", {"code": who.code()}).status_code == 302
    assert session_proofs(client) == ["password", "code"]
    return client


def with_passkey(soft: SoftAuthenticator) -> Client:
    """A browser signed in with a passkey and no password."""
    client = Client(HTTP_HOST=HOST)
    options = client.post("/login/passkey/options/").json()
    credential = json.dumps(soft.get(options, ORIGIN))
    assert client.post("/login/passkey/", {"credential": credential}).status_code == 302
    return client


def said(response: Any) -> str:
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


@pytest.fixture
def sam(db: None, frozen_time: float) -> Enrolled:
    return enrolled("sam@support.example", is_staff=True)


def test_staff_without_a_key_are_sent_to_add_one(sam: Enrolled) -> None:
    client = with_code(sam)
    response = client.get(STAFF_PAGE)
    assert response.status_code == 302 and response["Location"] == STAFF_KEY
    page = client.get(STAFF_KEY).content.decode()
    assert "Staff pages need a security key" in page and "Add this key and continue" in page


def test_staff_with_a_key_signed_in_with_a_code_confirm_with_the_key(sam: Enrolled) -> None:
    register(sam.user, resident=False)
    client = with_code(sam)
    response = client.get(STAFF_PAGE)
    assert response.status_code == 302 and response["Location"] == CONFIRM
    assert "Confirm it is you with your key" in said(response)
    # A POST is not replayed: back to the Security page, to go on from there.
    response = client.post("/support/new/", {})
    assert response["Location"] == "/account/confirm/?next=%2Faccount%2Fsecurity%2F"


def test_confirming_with_the_key_opens_staff_pages_and_a_code_does_not(
    sam: Enrolled, frozen_time: float
) -> None:
    soft, key = register(sam.user, resident=False)
    client = with_code(sam)
    # "Confirm it is you" asks staff with a key for the key alone: ?app=1 and ?recovery=1
    # change nothing, and a code posted anyway confirms nothing.
    for way in ("&app=1", "&recovery=1"):
        page = client.get(f"{CONFIRM}{way}").content.decode()
        assert "Staff confirm with their security key" in page and 'name="code"' not in page
    with clock.frozen(frozen_time + 30):  # the next code
        refused = client.post(f"{CONFIRM}&app=1", {"password": PASSWORD, "code": sam.code()})
    assert refused.status_code == 200
    assert client.get(STAFF_PAGE)["Location"] == CONFIRM  # a code: not enough
    options = client.post("/account/confirm/key-options/").json()
    credential = json.dumps(soft.get(options, ORIGIN, credential_id=key.credential_id))
    done = client.post(CONFIRM, {"password": PASSWORD, "credential": credential})
    assert done["Location"] == STAFF_PAGE
    assert client.get(STAFF_PAGE).status_code == 200


@pytest.mark.parametrize(
    "change",
    [ADD_KEY, "/account/security/setup/", "/account/security/disable/"],
)
def test_a_relayed_code_grants_staff_with_a_key_no_change(sam: Enrolled, change: str) -> None:
    """A phishing page that relays a staff member's password and code gets a session, but
    no freshness: adding its own key, an app, or turning 2FA off asks for the staff
    member's key first. Customers' code sign-ins still count as fresh."""
    register(sam.user, resident=False)
    client = with_code(sam)
    response = client.get(change)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/confirm/")


def test_off_a_code_sign_in_of_staff_with_a_key_is_fresh(sam: Enrolled, settings: Any) -> None:
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False
    register(sam.user, resident=False)
    assert with_code(sam).get(ADD_KEY).status_code == 200


def test_staff_signed_in_with_a_passkey_open_staff_pages(sam: Enrolled) -> None:
    soft, _ = register(sam.user)
    client = with_passkey(soft)
    assert client.get(STAFF_PAGE).status_code == 200
    assert client.get("/support/new/").status_code == 200


def test_the_support_link_shows_to_staff_who_still_need_a_key(sam: Enrolled) -> None:
    """The menu leads to the desk either way; the desk says what it needs."""
    client = with_code(sam)
    html = client.get("/account/security/").content.decode()
    assert f'href="{STAFF_PAGE}"' in html and ">Support" in html


def test_a_passkey_does_not_make_a_customer_staff(db: None, frozen_time: float) -> None:
    soft, _ = register(make_user("carol@example.com"))
    client = with_passkey(soft)
    assert client.get(STAFF_PAGE).status_code == 404
    assert 'href="/support/"' not in client.get("/account/security/").content.decode()


def test_the_proof_is_for_the_account_that_made_it(sam: Enrolled) -> None:
    """A sign-in record of another account (not the one this session signed in) counts
    for nothing here, whatever its proofs."""
    soft, _ = register(sam.user)
    client = with_passkey(soft)
    assert client.get(STAFF_PAGE).status_code == 200
    other = make_user("carol@example.com")
    SignIn.objects.filter(user=sam.user).update(user=other)
    assert client.get(STAFF_PAGE)["Location"] == CONFIRM


def test_off_a_code_sign_in_is_enough(sam: Enrolled, settings: Any, frozen_time: float) -> None:
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False
    assert with_code(sam).get(STAFF_PAGE).status_code == 200
    register(sam.user)
    with clock.frozen(frozen_time + 30):  # the next code
        assert with_code(sam).get(STAFF_PAGE).status_code == 200


def test_off_staff_without_2fa_are_sent_to_turn_it_on(
    db: None, frozen_time: float, settings: Any
) -> None:
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False
    User.objects.create_user("new@support.example", PASSWORD, is_staff=True)
    client = Client(HTTP_HOST=HOST)
    client.post("/login/", {"email": "new@support.example", "password": PASSWORD})
    response = client.get(STAFF_PAGE)
    assert response["Location"] == "/account/security/setup/"


def test_on_staff_without_2fa_are_sent_to_add_a_key(db: None, frozen_time: float) -> None:
    """A key is their first authenticator: 2FA goes on with it."""
    User.objects.create_user("new@support.example", PASSWORD, is_staff=True)
    client = Client(HTTP_HOST=HOST)
    client.post("/login/", {"email": "new@support.example", "password": PASSWORD})
    assert client.get(STAFF_PAGE)["Location"] == STAFF_KEY
