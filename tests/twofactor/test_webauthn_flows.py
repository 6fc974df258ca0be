"""Security keys at the flow level (issue 17): registration and the key as a second factor,
checked by the `webauthn` library against ceremonies made by an independent software
authenticator (tests/webauthn_soft.py). The challenge row, the counter's compare-and-set,
the throttle, events and notices are Keyfob's own; these tests hold them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.test import RequestFactory

from keyfob import otp
from keyfob.accounts.flows import ReauthRequired
from keyfob.accounts.models import User
from keyfob.api import flows as api
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock, throttle
from keyfob.otp import Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.models import Purpose, RecoveryCode, SecurityKey, WebAuthnChallenge
from tests.audit.test_concurrency import in_threads
from tests.conftest import confirmed_now, enrol, make_user
from tests.webauthn_soft import CeremonyError, SoftAuthenticator

pytestmark = pytest.mark.django_db
T0 = 1_900_000_005.0
ORIGIN = "http://localhost"
CTX = Context(address="192.0.2.1", user_agent="webauthn-flows")


def web_request(user: User | None = None, session: SessionStore | None = None) -> HttpRequest:
    """A POST from http://localhost (the RP id's host) in ``session``."""
    request = RequestFactory().post("/", HTTP_HOST="localhost", REMOTE_ADDR="192.0.2.1")
    request.session = session if session is not None else SessionStore()
    request.user = user if user is not None else AnonymousUser()
    if user is not None:  # the password confirmed just now (adding a key needs it)
        confirmed_now(request, user)
    return request


def add_key(
    user: User, soft: SoftAuthenticator, name: str = "", **create: Any
) -> tuple[SecurityKey, list[str]]:
    request = web_request(user)
    options = flows.begin(request, Purpose.REGISTER, user)
    response = soft.create(options, ORIGIN, **create)
    codes = flows.register_key(request, user, json.dumps(response), name, CTX)
    return SecurityKey.objects.filter(user=user).order_by("-pk")[0], codes


def assertion(
    user: User | None,
    soft: SoftAuthenticator,
    purpose: Purpose = Purpose.SIGNIN,
    **get: Any,
) -> tuple[HttpRequest, str]:
    """A request whose session holds a live challenge, and the key's answer to it."""
    request = web_request(user)
    options = flows.begin(request, purpose, user)
    return request, json.dumps(soft.get(options, ORIGIN, **get))


def sign_in(user: User | None, soft: SoftAuthenticator, **get: Any) -> SecurityKey:
    request, answer = assertion(user, soft, **get)
    return flows.verify_key(request, Purpose.SIGNIN, answer, CTX, user)


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with clock.frozen(T0):
        yield


@pytest.fixture
def alice() -> User:
    return make_user("alice@example.com", display_name="Alice")


def test_a_first_key_turns_2fa_on_with_recovery_codes(alice: User) -> None:
    """The first authenticator, a key, turns 2FA on: recovery codes, the event, the notice;
    the key's facts are stored as the authenticator gave them."""
    key, codes = add_key(alice, SoftAuthenticator(transports=("usb", "nfc")), "Blue key")
    assert flows.has_2fa(alice)
    assert len(codes) == 10 and RecoveryCode.objects.filter(user=alice).count() == 10
    assert key.name == "Blue key" and key.transports == ["nfc", "usb"]
    assert key.user_verified and not key.backup_eligible and key.kind_label == "Security key"
    on = SecurityEvent.objects.get(user=alice, kind=EventKind.TWOFACTOR_ON)
    assert on.detail["method"] == "security_key" and on.detail["name"] == "Blue key"
    assert Outbox.objects.filter(user=alice, kind=NoticeKind.TWOFACTOR_ON).count() == 1
    assert flows.twofactor_since(alice) == key.created_at


def test_a_key_added_to_an_app_keeps_the_recovery_codes(alice: User) -> None:
    enrol(alice)
    before = set(RecoveryCode.objects.filter(user=alice).values_list("digest", flat=True))
    key, codes = add_key(alice, SoftAuthenticator(), backup_eligible=True, backed_up=True)
    assert codes == []
    assert set(RecoveryCode.objects.filter(user=alice).values_list("digest", flat=True)) == before
    assert key.kind_label == "Synced passkey" and key.backed_up
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.KEY_ADDED).count() == 1
    notice = Outbox.objects.get(user=alice, kind=NoticeKind.KEY_ADDED)
    assert notice.params["name"] == "Security key"


def test_sign_in_with_the_key_moves_its_counter_and_names_it(alice: User) -> None:
    soft = SoftAuthenticator()
    key, _ = add_key(alice, soft, "Blue key")
    request, answer = assertion(alice, soft, sign_count=7)
    used = flows.verify_key(
        request, Purpose.SIGNIN, answer, CTX, alice, event=(EventKind.SIGNIN_OK, {})
    )
    assert used.pk == key.pk
    key.refresh_from_db()
    assert key.sign_count == 7 and key.last_used_at == clock.now()
    event = SecurityEvent.objects.get(user=alice, kind=EventKind.SIGNIN_OK)
    assert event.detail["authenticator"] == "Blue key"
    assert not WebAuthnChallenge.objects.filter(used_at__isnull=True).exists()


def test_a_replayed_answer_is_refused(alice: User) -> None:
    """The same answer again finds its challenge used; posted into a new challenge's
    session, its signature is over the old challenge."""
    soft = SoftAuthenticator()
    add_key(alice, soft)
    request, answer = assertion(alice, soft)
    flows.verify_key(request, Purpose.SIGNIN, answer, CTX, alice)
    with pytest.raises(flows.ChallengeExpired):
        flows.verify_key(request, Purpose.SIGNIN, answer, CTX, alice)
    fresh, _unused = assertion(alice, soft)
    with pytest.raises(flows.KeyRefused):
        flows.verify_key(fresh, Purpose.SIGNIN, answer, CTX, alice)


@pytest.mark.parametrize("count", [3, 5])
def test_a_counter_that_does_not_move_forward_is_a_possible_clone(
    alice: User, smtp: Any, count: int
) -> None:
    """A key whose counter reached 5 answers with 3 (or 5 again): refused, recorded as a
    possible copy, the holder told, the failure counted; the key itself still works."""
    soft = SoftAuthenticator()
    key, _ = add_key(alice, soft, "Blue key")
    sign_in(alice, soft, sign_count=5)
    with pytest.raises(flows.KeyCloned):
        sign_in(alice, soft, sign_count=count)
    key.refresh_from_db()
    assert key.sign_count == 5
    clone = SecurityEvent.objects.get(user=alice, kind=EventKind.KEY_CLONE)
    assert clone.detail["authenticator"] == "Blue key"
    assert Outbox.objects.get(user=alice, kind=NoticeKind.KEY_CLONE).params["name"] == "Blue key"
    assert throttle.consecutive_failures(throttle.CODE, str(alice.pk)) == 1
    assert sign_in(alice, soft, sign_count=6).pk == key.pk
    # The copy tries again: refused and recorded again, but the holder is told once an hour.
    with pytest.raises(flows.KeyCloned):
        sign_in(alice, soft, sign_count=count)
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.KEY_CLONE).count() == 2
    assert Outbox.objects.filter(user=alice, kind=NoticeKind.KEY_CLONE).count() == 1


def test_a_key_that_keeps_no_counter_signs_in_again(alice: User) -> None:
    """Synced passkeys report 0 each time: that is not a clone (the challenge is the
    replay guard)."""
    soft = SoftAuthenticator()
    key, _ = add_key(alice, soft, sign_count=0)
    for _ in range(2):
        assert sign_in(alice, soft, sign_count=0).pk == key.pk


def test_another_accounts_key_is_refused_and_counted(alice: User) -> None:
    bob = make_user("bob@example.com")
    bobs = SoftAuthenticator()
    add_key(bob, bobs)
    add_key(alice, SoftAuthenticator())
    request = web_request(alice)
    options = flows.begin(request, Purpose.SIGNIN, alice)
    # Bob's key answers Alice's challenge (it is not in her allow list: named explicitly).
    answer = bobs.get(options, ORIGIN, credential_id=bobs.credentials[0].id_b64)
    with pytest.raises(flows.KeyRefused):
        flows.verify_key(request, Purpose.SIGNIN, json.dumps(answer), CTX, alice)
    assert throttle.consecutive_failures(throttle.CODE, str(alice.pk)) == 1
    assert throttle.consecutive_failures(throttle.CODE, str(bob.pk)) == 0
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.KEY_WRONG).count() == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"origin": "http://evil.example"},
        {"rp_id": "evil.example"},
        {"bad_signature": True},
        {"client_data_type": "webauthn.create"},
        {"user_present": False},
    ],
    ids=["origin", "rp-id", "signature", "type", "no-presence"],
)
def test_a_bad_ceremony_is_refused_and_the_challenge_still_works(
    alice: User, bad: dict[str, Any]
) -> None:
    soft = SoftAuthenticator()
    add_key(alice, soft)
    request = web_request(alice)
    options = flows.begin(request, Purpose.SIGNIN, alice)
    origin = bad.pop("origin", ORIGIN)
    with pytest.raises(flows.KeyRefused):
        answer = soft.get(options, origin, **bad)
        flows.verify_key(request, Purpose.SIGNIN, json.dumps(answer), CTX, alice)
    assert throttle.consecutive_failures(throttle.CODE, str(alice.pk)) == 1
    right = soft.get(options, ORIGIN)
    flows.verify_key(request, Purpose.SIGNIN, json.dumps(right), CTX, alice)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "{",
        "[]",
        "null",
        '{"rawId": 5}',
        '{"rawId": "@@"}',
        '{"rawId": "AA", "response": "x"}',
        # Nested deeper than Python's recursion limit: json.loads raises RecursionError.
        "[" * 20_000,
    ],
)
def test_junk_is_refused_and_changes_nothing(alice: User, junk: str) -> None:
    soft = SoftAuthenticator()
    key, _ = add_key(alice, soft)
    request = web_request(alice)
    flows.begin(request, Purpose.SIGNIN, alice)
    with pytest.raises(flows.KeyRefused):
        flows.verify_key(request, Purpose.SIGNIN, junk, CTX, alice)
    key.refresh_from_db()
    assert key.last_used_at is None
    register = web_request(alice)
    flows.begin(register, Purpose.REGISTER, alice)
    with pytest.raises(flows.KeyRefused):
        flows.register_key(register, alice, junk, "", CTX)
    assert SecurityKey.objects.filter(user=alice).count() == 1


def test_a_challenge_lasts_five_minutes_for_its_session_and_purpose(alice: User) -> None:
    soft = SoftAuthenticator()
    add_key(alice, soft)
    request, answer = assertion(alice, soft)
    # Another session (no token), another purpose (reauth's), then too late.
    with pytest.raises(flows.ChallengeExpired):
        flows.verify_key(web_request(alice), Purpose.SIGNIN, answer, CTX, alice)
    with pytest.raises(flows.ChallengeExpired):
        flows.verify_key(request, Purpose.REAUTH, answer, CTX, alice)
    late = T0 + app_settings.webauthn_challenge_seconds + 1
    with clock.frozen(late), pytest.raises(flows.ChallengeExpired):
        flows.verify_key(request, Purpose.SIGNIN, answer, CTX, alice)
    assert flows.verify_key(request, Purpose.SIGNIN, answer, CTX, alice)


def test_a_new_challenge_replaces_the_sessions_earlier_one(alice: User) -> None:
    soft = SoftAuthenticator()
    add_key(alice, soft)
    request = web_request(alice)
    first = flows.begin(request, Purpose.SIGNIN, alice)
    flows.begin(request, Purpose.SIGNIN, alice)
    assert WebAuthnChallenge.objects.filter(purpose=Purpose.SIGNIN).count() == 1
    with pytest.raises(flows.KeyRefused):  # signed over the replaced challenge
        flows.verify_key(request, Purpose.SIGNIN, json.dumps(soft.get(first, ORIGIN)), CTX, alice)


def test_a_host_outside_the_rp_id_gets_no_challenge(alice: User, settings: Any) -> None:
    settings.KEYFOB_WEBAUTHN_RP_ID = "portal.example.com"
    with pytest.raises(flows.WrongHost):
        flows.begin(web_request(alice), Purpose.REGISTER, alice)
    assert not WebAuthnChallenge.objects.exists()


def test_the_throttle_covers_keys_and_codes(alice: User) -> None:
    """Wrong codes and wrong keys count together; while the account waits, even the right
    key is refused."""
    soft = SoftAuthenticator()
    add_key(alice, soft)
    for _ in range(5):
        with pytest.raises(flows.KeyRefused):
            sign_in(alice, soft, bad_signature=True)
    with pytest.raises(Throttled):
        sign_in(alice, soft)


def test_keys_are_capped_and_a_key_is_registered_once(alice: User) -> None:
    soft = SoftAuthenticator()
    add_key(alice, soft)
    request = web_request(alice)
    options = flows.begin(request, Purpose.REGISTER, alice)
    # The options exclude the key already held, so the authenticator refuses to make a
    # second credential; the same answer twice finds its challenge used.
    assert [c["id"] for c in options["excludeCredentials"]] == [soft.credentials[0].id_b64]
    with pytest.raises(CeremonyError, match="InvalidStateError"):
        soft.create(options, ORIGIN)
    other = SoftAuthenticator().create(options, ORIGIN)
    flows.register_key(request, alice, json.dumps(other), "", CTX)
    with pytest.raises(flows.ChallengeExpired):
        flows.register_key(request, alice, json.dumps(other), "", CTX)
    for _ in range(app_settings.max_security_keys - 2):
        add_key(alice, SoftAuthenticator())
    with pytest.raises(flows.TooManyKeys):
        flows.begin(web_request(alice), Purpose.REGISTER, alice)


def _registrations_at_once(user: User, n: int) -> list[object]:
    """``n`` "Add a security key" answers, each from its own session and authenticator,
    sent at once (a thread and a database connection each); each result or exception."""
    prepared = []
    for _ in range(n):
        request = web_request(user)
        options = flows.begin(request, Purpose.REGISTER, user)
        prepared.append((request, json.dumps(SoftAuthenticator().create(options, ORIGIN))))

    def register(i: int) -> object:
        request, answer = prepared[i]
        try:
            return flows.register_key(request, user, answer, f"Key {i}", CTX)
        except flows.TooManyKeys as exc:
            return exc

    return in_threads(n, register)


@pytest.mark.postgres  # setup.lock_account: proven on PostgreSQL (issue 21)
@pytest.mark.django_db(transaction=True)
def test_keys_added_at_once_do_not_pass_the_cap(alice: User) -> None:
    """Attack: one short of the cap, several tabs press "Add" together. Locking the
    account's keys locks nothing new rows can be counted against (PostgreSQL, READ
    COMMITTED): each saw the cap not reached. Only one may be added."""
    for _ in range(app_settings.max_security_keys - 1):
        add_key(alice, SoftAuthenticator())
    results = _registrations_at_once(alice, 4)
    assert sum(isinstance(r, flows.TooManyKeys) for r in results) == 3
    assert SecurityKey.objects.filter(user=alice).count() == app_settings.max_security_keys


@pytest.mark.postgres  # setup.lock_account: proven on PostgreSQL (issue 21)
@pytest.mark.django_db(transaction=True)
def test_first_keys_added_at_once_turn_2fa_on_once(alice: User) -> None:
    """Two first keys at once: one turns 2FA on and gets the recovery codes; the other is
    one more key. Else each makes a set, and the set one tab shows no longer works."""
    results = _registrations_at_once(alice, 2)
    codes = [r for r in results if isinstance(r, list) and r]
    assert len(codes) == 1 and [r for r in results if r == []] != []
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.TWOFACTOR_ON).count() == 1
    assert RecoveryCode.objects.filter(user=alice).count() == flows.RECOVERY_CODES
    assert SecurityKey.objects.filter(user=alice).count() == 2


@pytest.mark.postgres  # setup.lock_account: proven on PostgreSQL (issue 21)
@pytest.mark.django_db(transaction=True)
def test_an_app_and_a_key_confirmed_at_once_turn_2fa_on_once(alice: User) -> None:
    """The first app's code and the first key's answer at once: one of them turns 2FA on
    (one set of recovery codes), the other is one more authenticator."""
    pending = flows.start_setup(alice)
    code = otp.totp(pending.secret(), clock.time())
    request = web_request(alice)
    answer = json.dumps(
        SoftAuthenticator().create(flows.begin(request, Purpose.REGISTER, alice), ORIGIN)
    )
    results = in_threads(
        2,
        lambda i: (
            flows.confirm_setup(request, alice, code, CTX)
            if i == 0
            else flows.register_key(request, alice, answer, "", CTX)
        ),
    )
    assert sorted(len(r) for r in results) == [0, flows.RECOVERY_CODES]
    assert SecurityEvent.objects.filter(user=alice, kind=EventKind.TWOFACTOR_ON).count() == 1
    assert RecoveryCode.objects.filter(user=alice).count() == flows.RECOVERY_CODES


def test_a_credential_id_longer_than_webauthn_allows_is_refused(alice: User) -> None:
    """WebAuthn §7.1: a credential id is at most 1023 bytes. A longer one (2000 bytes fits
    in a form's answer) is refused like any answer that proves no key; stored, it would
    outgrow its column (a DataError, so a 500, on PostgreSQL)."""
    soft = SoftAuthenticator()
    request = web_request(alice)
    options = flows.begin(request, Purpose.REGISTER, alice)
    answer = json.dumps(soft.create(options, ORIGIN, credential_id_length=2000))
    with pytest.raises(flows.KeyRefused):
        flows.register_key(request, alice, answer, "", CTX)
    assert not SecurityKey.objects.filter(user=alice).exists()
    assert not RecoveryCode.objects.filter(user=alice).exists()
    # The longest id WebAuthn allows is taken.
    key, _codes = add_key(alice, soft, credential_id_length=1023)
    assert len(key.credential_id) == 1364  # base64url of 1023 bytes


KEY = flows.Family.KEY


def test_removing_keys_and_the_last_authenticator(alice: User) -> None:
    first, _ = add_key(alice, SoftAuthenticator(), "One")
    second, _ = add_key(alice, SoftAuthenticator(), "Two")
    request = web_request(alice)
    assert flows.remove(request, alice, KEY, second.pk, CTX).label == "Two"
    with pytest.raises(flows.LastAuthenticator):
        flows.remove(request, alice, KEY, first.pk, CTX)
    enrol(alice)  # an app: now the key is not the last one
    assert flows.remove(request, alice, KEY, first.pk, CTX).label == "One"
    app = flows.confirmed_authenticators(alice)[0]
    with pytest.raises(flows.LastAuthenticator):
        flows.remove(request, alice, flows.Family.APP, app.pk, CTX)
    bob = make_user("bob@example.com")
    bobs, _ = add_key(bob, SoftAuthenticator())
    with pytest.raises(flows.UnknownAuthenticator):
        flows.remove(request, alice, KEY, bobs.pk, CTX)
    assert Outbox.objects.filter(user=alice, kind=NoticeKind.KEY_REMOVED).count() == 2


def test_turning_2fa_off_and_supports_reset_remove_every_key(alice: User) -> None:
    add_key(alice, SoftAuthenticator())
    enrol(alice)
    flows.disable_by_support(alice, CTX)
    assert not SecurityKey.objects.filter(user=alice).exists()
    assert not flows.has_2fa(alice) and flows.turned_off_by_support(alice)


def test_rename_a_key(alice: User) -> None:
    key, _ = add_key(alice, SoftAuthenticator(), "Old")
    assert flows.rename(alice, KEY, key.pk, "New", CTX).label == "New"
    assert Outbox.objects.get(user=alice, kind=NoticeKind.KEY_RENAMED).params == {
        "old": "Old",
        "name": "New",
    }


def test_ssh_asks_a_keys_only_account_for_a_code_and_takes_a_recovery_code(alice: User) -> None:
    """An SSH prompt cannot take a security key: an account whose 2FA is keys only is not
    waved through as "not enrolled"; a one-time code is refused, a recovery code works."""
    _key, codes = add_key(alice, SoftAuthenticator())
    api.link(alice, "alice", "web1", CTX)
    assert api.check("web1", "alice").result == api.Result.CODE_REQUIRED
    account = api.account_for("alice", "web1")
    assert account is not None and account[1] == []
    context = api.ssh_context("web1", "192.0.2.9")
    assert api.verify(account, "alice", "web1", "123456", context).result == api.Result.REJECTED
    accepted = api.verify(account, "alice", "web1", codes[0], context)
    assert accepted.result == api.Result.ACCEPTED


def test_adding_a_key_needs_a_recent_confirmation(alice: User) -> None:
    """The flow itself refuses, whatever guard a page has: no challenge, no key."""
    soft = SoftAuthenticator()
    stale = web_request(alice)
    options = flows.begin(stale, Purpose.REGISTER, alice)
    response = json.dumps(soft.create(options, ORIGIN))
    later = T0 + 601
    with clock.frozen(later), pytest.raises(ReauthRequired):
        flows.register_key(stale, alice, response, "", CTX)
    with clock.frozen(later), pytest.raises(ReauthRequired):
        flows.begin(stale, Purpose.REGISTER, alice)
    assert not SecurityKey.objects.filter(user=alice).exists()
