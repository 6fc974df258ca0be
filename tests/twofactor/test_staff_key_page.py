"""Issue 24: a staff member's first visit to the desk. A staff member without a key, sent by
a staff page, gets one page ("Staff pages need a security key") that says why, takes the
operator's enrolment code and adds the key, then opens the page asked for: no phone-number
step, no general set-up page, no second confirmation with the key just added.

Real sign-ins and the real registration ceremony (the software authenticator) through the
pages with Django's test client; the browser's walk is in test_browser_passkeys.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from keyfob.accounts.models import User
from keyfob.core import clock
from keyfob.twofactor.models import SecurityKey, StaffKeyInvite
from tests.conftest import PASSWORD, Enrolled, enrol, make_user, password_step, session_proofs
from tests.twofactor.keys import ORIGIN, key_client, options
from tests.twofactor.passkeys import staff_invite
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db

STAFF_PAGE = "/support/"
STAFF_KEY = "/account/security/staff-key/"
FROM_DESK = f"{STAFF_KEY}?next=%2Fsupport%2F"
OPTIONS = "/account/security/keys/options/"
WRONG_INVITE = "This enrolment code is not right, was used already or has expired."


@pytest.fixture
def sam(db: None, frozen_time: float) -> Enrolled:
    """Sam, staff, with an authenticator app and no key yet."""
    return enrol(make_user("sam@support.example", is_staff=True))


def with_code(who: Enrolled) -> Client:
    client = key_client()
    assert password_step(client, who.user.email).status_code == 302
    response = client.post("/login/code/?app=1", {"code": who.code()})
    assert response.status_code == 302 and not response["Location"].startswith("/login")
    return client


def add_key(client: Client, invite: str, *, next_url: str = STAFF_PAGE, **extra: str) -> Any:
    """Press "Add this key and continue" with a key the software authenticator makes."""
    soft = SoftAuthenticator(transports=("usb",))
    answer = soft.create(options(client, OPTIONS), ORIGIN, resident=False)
    data = {"name": "Desk key", "credential": json.dumps(answer), "invite": invite}
    return client.post(STAFF_KEY, {**data, "next": next_url, **extra})


def test_the_desk_sends_staff_without_a_key_to_one_page_that_says_why(sam: Enrolled) -> None:
    client = with_code(sam)
    response = client.get(STAFF_PAGE)
    assert response.status_code == 302 and response["Location"] == FROM_DESK
    page = client.get(FROM_DESK).content.decode()
    assert "<h1>Staff pages need a security key</h1>" in page
    assert "a fake copy of this site can relay a code" in page
    assert ">Enrolment code</label>" in page and 'name="next" value="/support/"' in page
    assert "Add this key and continue" in page


def test_the_key_added_with_the_enrolment_code_opens_the_desk_at_once(sam: Enrolled) -> None:
    """Before, the key added, the desk asked "Confirm it is you" with that key again."""
    client = with_code(sam)
    response = add_key(client, staff_invite(sam.user))
    assert response.status_code == 302 and response["Location"] == STAFF_PAGE
    assert SecurityKey.objects.get(user=sam.user).name == "Desk key"
    assert StaffKeyInvite.objects.get(user=sam.user).used_at == clock.now()
    assert session_proofs(client) == ["password", "code", "security_key"]
    assert client.get(STAFF_PAGE).status_code == 200


def test_staff_without_2fa_skip_the_phone_step_and_save_their_codes_on_the_way(
    db: None, frozen_time: float
) -> None:
    """No "Your phone number" (a customer's step before 2FA): the key turns 2FA on, the
    recovery codes are shown once, then the desk."""
    new = make_user("new@support.example", is_staff=True)
    assert not new.phone
    client = key_client()
    assert password_step(client, new.email).status_code == 302
    assert client.get(STAFF_PAGE)["Location"] == FROM_DESK
    page = client.get(FROM_DESK)
    assert page.status_code == 200
    assert "turns two-factor authentication on" in page.content.decode()
    response = add_key(client, staff_invite(new))
    assert response["Location"] == "/account/security/recovery-codes/"
    assert client.get("/account/security/recovery-codes/").status_code == 200
    saved = client.post("/account/security/recovery-codes/", {"saved": "on"})
    assert saved["Location"] == STAFF_PAGE
    assert client.get(STAFF_PAGE).status_code == 200


def test_a_wrong_enrolment_code_says_so_and_adds_nothing(sam: Enrolled) -> None:
    staff_invite(sam.user)
    client = with_code(sam)
    for typed in ("ABCD-EFGH-JKMN-PQRS", "junk <script>", ""):
        response = add_key(client, typed)
        assert response.status_code == 200
        page = response.content.decode()
        assert WRONG_INVITE in page or "Enter the enrolment code an operator gave you." in page
    assert not SecurityKey.objects.exists()
    assert client.get(STAFF_PAGE)["Location"] == FROM_DESK


def test_a_junk_answer_is_a_clear_error_not_a_500(sam: Enrolled) -> None:
    client = with_code(sam)
    code = staff_invite(sam.user)
    response = client.post(
        STAFF_KEY, {"name": "x", "credential": "{not json", "invite": code, "next": "/support/"}
    )
    assert response.status_code == 200
    assert not SecurityKey.objects.exists()
    assert StaffKeyInvite.objects.get(user=sam.user).used_at is None


def test_an_old_confirmation_asks_confirm_it_is_you_first(
    sam: Enrolled, frozen_time: float
) -> None:
    client = with_code(sam)
    with clock.frozen(frozen_time + settings.KEYFOB_REAUTH_SECONDS + 60):
        response = client.get(FROM_DESK)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/confirm/?next=")


def test_a_foreign_next_and_a_non_staff_account_go_to_security(
    db: None, frozen_time: float
) -> None:
    sam = enrol(make_user("sam@support.example", is_staff=True))
    client = with_code(sam)
    response = add_key(client, staff_invite(sam.user), next_url="https://evil.example/")
    assert response["Location"] == "/account/security/"
    # With a key already, the page has nothing to add: on to where it was asked from.
    assert client.get(FROM_DESK)["Location"] == STAFF_PAGE
    alice = enrol(make_user("alice@example.com"))
    customer = with_code(alice)
    assert customer.get(FROM_DESK)["Location"] == STAFF_PAGE  # and the desk is a 404 to her
    assert customer.get(STAFF_PAGE).status_code == 404
    assert User.objects.get(pk=alice.user.pk).check_password(PASSWORD)
