"""The sign-in record (DESIGN.md invariant 8): a row per signed-in session with the proofs it
holds, written by the sign-in flows; the proofs die with what made them; "Your sessions" on
the Security page ends sessions for real. Real sign-ins through the pages with Django's test
client; the browsers' side is tests/twofactor/test_browser_sessions.py.

Run on both databases (``KEYFOB_TEST_DATABASE_URL`` for PostgreSQL).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client, RequestFactory

from keyfob.accounts import flows as account_flows
from keyfob.accounts import proofs
from keyfob.accounts.models import Proof, SignIn, User
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor.models import Authenticator, SecurityKey
from tests.conftest import PASSWORD, Enrolled, enrol, make_user, session_proofs
from tests.twofactor.passkeys import HOST, ORIGIN, register
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db

STAFF_PAGE = "/support/"
SECURITY = "/account/security/"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def browser(agent: str = UA, address: str = "192.0.2.7") -> Client:
    return Client(HTTP_HOST=HOST, HTTP_USER_AGENT=agent, REMOTE_ADDR=address)


def with_password(user: User, **kwargs: Any) -> Client:
    client = browser(**kwargs)
    assert client.post("/login/", {"email": user.email, "password": PASSWORD}).status_code == 302
    assert client.session.get("_auth_user_id") == str(user.pk)
    return client


def with_code(who: Enrolled, at: float | None = None, **kwargs: Any) -> Client:
    client = browser(**kwargs)
    client.post("/login/", {"email": who.user.email, "password": PASSWORD})
    response = client.post("/login/code/?app=1", {"code": who.code(at)})
    assert response.status_code == 302 and client.session.get("_auth_user_id")
    return client


def with_passkey(soft: SoftAuthenticator) -> Client:
    client = browser()
    options = client.post("/login/passkey/options/").json()
    credential = json.dumps(soft.get(options, ORIGIN))
    assert client.post("/login/passkey/", {"credential": credential}).status_code == 302
    return client


def record_of(client: Client) -> SignIn:
    return SignIn.objects.get(session_digest=proofs.digest(client.session.session_key or ""))


def signed_in(client: Client) -> bool:
    return client.get(SECURITY).status_code == 200


@pytest.fixture
def alice(db: None, frozen_time: float) -> User:
    return make_user("alice@example.com")


@pytest.fixture
def enrolled(alice: User) -> Enrolled:
    return enrol(alice, name="Phone")


# The record -------------------------------------------------------------------------------


def test_a_sign_in_writes_its_record_with_a_digest_of_the_session_key(alice: User) -> None:
    client = with_password(alice)
    key = client.session.session_key
    assert key
    row = record_of(client)
    assert row.user == alice and row.ended_at is None
    assert (row.address, row.user_agent) == ("192.0.2.7", UA)
    assert row.started_at == row.last_seen_at == clock.now()
    # The key itself is stored nowhere in the record.
    stored = SignIn.objects.filter(pk=row.pk).values().get()
    assert all(key not in str(value) for value in stored.values())
    assert session_proofs(client) == ["password"]


def test_a_code_sign_in_names_the_app(enrolled: Enrolled) -> None:
    client = with_code(enrolled)
    app = Authenticator.objects.get(user=enrolled.user)
    code = record_of(client).proofs.get(factor="code")
    assert (code.authenticator_kind, code.authenticator_id, code.authenticator_name) == (
        "app",
        app.pk,
        "Phone",
    )
    assert session_proofs(client) == ["password", "code"]


def test_a_trusted_browser_proves_no_second_factor(enrolled: Enrolled, frozen_time: float) -> None:
    client = browser()
    client.post("/login/", {"email": enrolled.user.email, "password": PASSWORD})
    client.post("/login/code/?app=1", {"code": enrolled.code(), "trust": "on"})
    client.post("/logout/")
    with clock.frozen(frozen_time + 30):
        client.post("/login/", {"email": enrolled.user.email, "password": PASSWORD})
        assert session_proofs(client) == ["password", "trusted"]
        # Signed in, but not recently enough for a sensitive change.
        assert client.get("/account/security/disable/")["Location"].startswith("/account/confirm/")


def test_confirm_it_is_you_adds_proofs_to_the_same_record(
    enrolled: Enrolled, frozen_time: float
) -> None:
    client = with_code(enrolled)
    with clock.frozen(frozen_time + 700):  # past KEYFOB_REAUTH_SECONDS
        assert client.get("/account/security/disable/")["Location"].startswith("/account/")
        response = client.post(
            "/account/confirm/?app=1",
            {"password": PASSWORD, "code": enrolled.code(), "next": "/account/security/disable/"},
        )
        assert response["Location"] == "/account/security/disable/"
        assert client.get("/account/security/disable/").status_code == 200
        assert session_proofs(client) == ["password", "code", "password", "code"]
    # One record, the sign-in's: the confirmation added to it.
    assert record_of(client).proofs.count() == 4


def test_signing_out_ends_the_record(alice: User) -> None:
    client = with_password(alice)
    row = record_of(client)
    client.post("/logout/")
    row.refresh_from_db()
    assert row.ended_at == clock.now()


# Proofs die with what made them -------------------------------------------------------------


@pytest.fixture
def sam(db: None, frozen_time: float) -> Enrolled:
    return enrol(make_user("sam@support.example", is_staff=True))


def test_removing_the_key_that_made_a_staff_session_phishing_resistant(sam: Enrolled) -> None:
    """The staff page asks again the moment the key is gone (from another session)."""
    soft, key = register(sam.user, name="Blue")
    spare, _ = register(sam.user, name="Spare")
    staff = with_passkey(soft)
    assert staff.get(STAFF_PAGE).status_code == 200
    # Removed from another browser, signed in there with the spare key.
    other = with_passkey(spare)
    assert other.post(f"/account/security/keys/{key.pk}/remove/")["Location"] == SECURITY
    assert not SecurityKey.objects.filter(pk=key.pk).exists()
    response = staff.get(STAFF_PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/account/confirm/")
    assert Proof.objects.get(signin=record_of(staff)).revoked_at == clock.now()
    assert other.get(STAFF_PAGE).status_code == 200  # the spare key's proof stands


def test_a_key_flagged_as_a_possible_copy_proves_nothing_any_more(sam: Enrolled) -> None:
    soft, key = register(sam.user)
    staff = with_passkey(soft)
    assert staff.get(STAFF_PAGE).status_code == 200
    # A copy of the key answers with a counter that did not move forward.
    SecurityKey.objects.filter(pk=key.pk).update(sign_count=10**6)
    attacker = browser()
    options = attacker.post("/login/passkey/options/").json()
    credential = json.dumps(soft.get(options, ORIGIN))
    attacker.post("/login/passkey/", {"credential": credential})
    assert SecurityEvent.objects.filter(kind=EventKind.KEY_CLONE).exists()
    assert not signed_in(attacker)
    assert staff.get(STAFF_PAGE)["Location"].startswith("/account/confirm/")


def test_staff_lose_the_mark_when_2fa_is_turned_off(sam: Enrolled) -> None:
    """Issue 22: staff marked phishing-resistant kept the mark after turning 2FA off."""
    soft, _ = register(sam.user)
    staff = with_passkey(soft)
    assert staff.get(STAFF_PAGE).status_code == 200
    assert staff.post("/account/security/disable/")["Location"] == SECURITY
    assert not SecurityKey.objects.filter(user=sam.user).exists()
    assert staff.get(STAFF_PAGE)["Location"].startswith("/account/security/staff-key/")


def test_staff_lose_the_mark_when_every_key_is_removed(sam: Enrolled) -> None:
    """Issue 22: ... or removing every key (the app stays, so 2FA stays on)."""
    soft, key = register(sam.user)
    staff = with_passkey(soft)
    assert staff.get(STAFF_PAGE).status_code == 200
    assert staff.post(f"/account/security/keys/{key.pk}/remove/")["Location"] == SECURITY
    assert not SecurityKey.objects.filter(user=sam.user).exists()
    assert staff.get(STAFF_PAGE)["Location"].startswith("/account/security/staff-key/")


def test_a_new_password_ends_the_password_proofs(enrolled: Enrolled, frozen_time: float) -> None:
    client = with_code(enrolled)
    response = client.post(
        "/account/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a new pass phrase 42",
            "new_password2": "a new pass phrase 42",
        },
    )
    assert response.status_code == 302
    assert signed_in(client)  # this session stays signed in (under a new id)
    assert record_of(client).proofs.filter(factor="password", revoked_at__isnull=True).count() == 0
    assert session_proofs(client) == ["code"]
    assert client.get("/account/security/disable/")["Location"].startswith("/account/confirm/")


# Your sessions ----------------------------------------------------------------------------


def test_the_security_page_lists_every_session(enrolled: Enrolled, frozen_time: float) -> None:
    here = with_code(enrolled)
    with clock.frozen(frozen_time + 30):
        there = with_code(
            enrolled,
            agent="Mozilla/5.0 (Macintosh) Version/17.0 Safari/605.1.15",
            address="198.51.100.9",
        )
    page = here.get(SECURITY).content.decode()
    assert "Your sessions" in page
    assert "198.51.100.9" in page and "192.0.2.7" in page
    assert page.count("(this browser)") >= 1
    assert "Password + Authenticator app code “Phone”" in page
    assert f'action="/account/security/sessions/{record_of(there).pk}/sign-out/"' in page
    assert f'action="/account/security/sessions/{record_of(here).pk}/sign-out/"' not in page
    assert "Sign out everywhere else" in page


def test_sign_out_one_session_ends_it_for_real(enrolled: Enrolled, frozen_time: float) -> None:
    here = with_code(enrolled)
    with clock.frozen(frozen_time + 30):
        there = with_code(enrolled, address="198.51.100.9")
        there_key = there.session.session_key
        target = record_of(there)
        response = here.post(f"/account/security/sessions/{target.pk}/sign-out/")
    assert response["Location"] == SECURITY
    assert not Session.objects.filter(session_key=there_key).exists()
    target.refresh_from_db()
    assert target.ended_at is not None
    assert not signed_in(there)
    assert signed_in(here)
    event = SecurityEvent.objects.get(kind=EventKind.SESSIONS_ENDED)
    assert event.address == "192.0.2.7" and event.detail == {"sessions": ["Firefox · Linux"]}
    assert Outbox.objects.filter(user=enrolled.user, kind=NoticeKind.SESSIONS_ENDED).exists()


def test_sign_out_needs_a_recent_confirmation(enrolled: Enrolled, frozen_time: float) -> None:
    here = with_code(enrolled)
    there = with_code(enrolled, at=frozen_time + 30)
    target = record_of(there)
    with clock.frozen(frozen_time + 700):
        response = here.post(f"/account/security/sessions/{target.pk}/sign-out/")
        assert response["Location"].startswith("/account/confirm/")
    target.refresh_from_db()
    assert target.ended_at is None
    assert not SecurityEvent.objects.filter(kind=EventKind.SESSIONS_ENDED).exists()


@pytest.mark.parametrize("which", ["other account", "unknown", "this one"])
def test_sign_out_of_what_is_not_another_session_of_mine_changes_nothing(
    enrolled: Enrolled, which: str
) -> None:
    here = with_code(enrolled)
    bob = with_password(make_user("bob@example.com"))
    pk = {"other account": record_of(bob).pk, "unknown": 10**9, "this one": record_of(here).pk}[
        which
    ]
    live = set(SignIn.objects.filter(ended_at__isnull=True).values_list("pk", flat=True))
    response = here.post(f"/account/security/sessions/{pk}/sign-out/", follow=True)
    assert response.status_code == 200
    assert "That session had already ended." in response.content.decode()
    assert signed_in(bob) and signed_in(here)
    assert set(SignIn.objects.filter(ended_at__isnull=True).values_list("pk", flat=True)) == live
    assert not SecurityEvent.objects.filter(kind=EventKind.SESSIONS_ENDED).exists()


def test_sign_out_everywhere_else(enrolled: Enrolled, frozen_time: float) -> None:
    here = with_code(enrolled)
    others = []
    for n in (1, 2):
        with clock.frozen(frozen_time + 30 * n):
            others.append(with_code(enrolled))
    half = browser()  # half-way: password typed, no code yet
    half.post("/login/", {"email": enrolled.user.email, "password": PASSWORD})
    bob = with_password(make_user("bob@example.com"))
    with clock.frozen(frozen_time + 90):
        response = here.post("/account/security/sessions/sign-out/", follow=True)
    assert "3 other sessions are signed out." in response.content.decode()
    assert not any(signed_in(c) for c in others)
    assert half.get("/login/code/")["Location"] == "/login/"
    assert signed_in(here) and signed_in(bob)
    assert SignIn.objects.filter(user=enrolled.user, ended_at__isnull=True).count() == 1


def test_a_password_reset_ends_every_session_and_record(alice: User) -> None:
    clients = [with_password(alice), with_password(alice, address="198.51.100.9")]
    request = RequestFactory().post("/login/reset/code/", REMOTE_ADDR="192.0.2.8")
    account_flows.start_password_reset(request, alice.email)
    code = account_flows.unseal_reset_code(
        Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET_CODE).params
    )
    account_flows.finish_password_reset(request, alice.email, code, "a new pass phrase 42")
    assert not any(signed_in(c) for c in clients)
    assert not SignIn.objects.filter(user=alice, ended_at__isnull=True).exists()
    assert not Proof.objects.filter(user=alice, revoked_at__isnull=True, factor="password").exists()


def test_last_seen_is_written_at_most_once_a_minute(alice: User, frozen_time: float) -> None:
    client = with_password(alice)
    row = record_of(client)
    with clock.frozen(frozen_time + 30):
        assert signed_in(client)
    row.refresh_from_db()
    assert row.last_seen_at.timestamp() == frozen_time
    with clock.frozen(frozen_time + 61):
        assert signed_in(client)
        row.refresh_from_db()
        assert row.last_seen_at == clock.now()


def test_the_api_path_never_touches_the_record(alice: User, frozen_time: float) -> None:
    client = with_password(alice)
    row = record_of(client)
    with clock.frozen(frozen_time + 120):
        client.post("/api/v1/ssh/verify", {}, content_type="application/json")
    row.refresh_from_db()
    assert row.last_seen_at.timestamp() == frozen_time


def test_prune_activity_removes_ended_records(alice: User, frozen_time: float) -> None:
    ended = with_password(alice)
    ended.post("/logout/")
    live = with_password(alice)
    call_command("prune-activity")
    assert list(SignIn.objects.values_list("pk", flat=True)) == [record_of(live).pk]
    assert signed_in(live)
