"""A sign-in with a passkey and no password, at the flow: ``flows.verify_key`` with
Purpose.PASSWORDLESS finds the account from the key, and refuses whatever is not a
discoverable key, registered with user verification, verifying its user now, answering this
session's live challenge once. The software authenticator (tests/webauthn_soft.py) plays the
browser; the `webauthn` library checks it as it checks a browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction

from keyfob.accounts.models import User
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock, throttle
from keyfob.otp import Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.models import Purpose, SecurityKey, WebAuthnChallenge
from tests.conftest import make_user
from tests.twofactor.passkeys import (
    CONTEXT,
    assertion,
    new_session,
    passkey_options,
    register,
    web_request,
)
from tests.webauthn_soft import SoftAuthenticator, b64url_decode

pytestmark = pytest.mark.django_db


def sign_in(
    soft: SoftAuthenticator, key: SecurityKey | None = None, **knobs: object
) -> SecurityKey:
    """Ask for options in a new session and answer them with ``soft``; the flow's result."""
    request = web_request()
    answer = assertion(soft, passkey_options(request), key, **knobs)
    return flows.verify_key(request, Purpose.PASSWORDLESS, answer, CONTEXT)


def refusals(user: User) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=EventKind.KEY_WRONG))


def test_the_options_name_no_account_and_ask_for_user_verification(
    user: User, frozen_time: float
) -> None:
    register(user)
    options = passkey_options(web_request())
    assert options["rpId"] == "localhost"
    assert options["allowCredentials"] == []  # the key says whose it is
    assert options["userVerification"] == "required"
    row = WebAuthnChallenge.objects.get(used_at__isnull=True)
    assert row.purpose == Purpose.PASSWORDLESS and row.user is None


def test_a_passkey_signs_in_the_account_it_belongs_to(user: User, frozen_time: float) -> None:
    soft, key = register(user)
    bob = make_user("bob@example.com")
    register(bob)  # another account's passkey, on another device
    found = sign_in(soft)
    assert found.pk == key.pk and found.user == user
    key.refresh_from_db()
    assert key.sign_count == 1 and key.last_used_at == clock.now()
    assert refusals(user) == []


def test_a_key_that_does_not_verify_its_user_now_is_refused(user: User, frozen_time: float) -> None:
    """Registered with UV, but no PIN or fingerprint this time: presence alone is one
    factor, not two."""
    soft, key = register(user)
    with pytest.raises(flows.KeyRefused):
        sign_in(soft, user_verified=False)
    assert len(refusals(user)) == 1  # in the activity (counted on the address)
    key.refresh_from_db()
    assert key.sign_count == 0 and key.last_used_at is None


def test_a_key_registered_without_user_verification_never_signs_in_alone(
    user: User, frozen_time: float
) -> None:
    """Even verifying its user now: what it proved when added is what it is."""
    soft, _ = register(user, user_verified=False)
    with pytest.raises(flows.NotPasswordless):
        sign_in(soft)
    assert len(refusals(user)) == 1


def test_a_key_that_keeps_no_account_never_signs_in_alone(user: User, frozen_time: float) -> None:
    """A non-resident key is never offered for a request that names no key; picked by its
    id anyway, its answer carries no user handle and is refused."""
    soft, key = register(user, resident=False)
    assert not key.discoverable
    with pytest.raises(flows.KeyRefused):
        sign_in(soft, key)
    assert len(refusals(user)) == 1


def test_a_passkey_is_known_by_how_it_answers(user: User, frozen_time: float) -> None:
    """A resident key whose browser did not report it (no credProps) is a passkey once it
    answers a request that named no key, with its account's user handle."""
    soft, key = register(user, report_resident=False)
    assert not key.discoverable
    assert sign_in(soft).pk == key.pk
    key.refresh_from_db()
    assert key.discoverable


def test_a_user_handle_of_another_account_is_refused(user: User, frozen_time: float) -> None:
    """Alice's key claiming Bob's account (its user handle replaced), and a passkey's answer
    with no user handle at all: the signature is Alice's, the account is not said."""
    soft, key = register(user)
    bob = make_user("bob@example.com")
    _, bobs = register(bob)
    soft.credentials[-1].user_handle = b64url_decode(bobs.user_handle)
    with pytest.raises(flows.KeyRefused):
        sign_in(soft)
    assert len(refusals(user)) == 1 and refusals(bob) == []
    soft.credentials[-1].resident = False  # answers without a user handle
    with pytest.raises(flows.KeyRefused):
        sign_in(soft, key)


def test_an_unknown_key_is_refused_and_counted_against_no_account(
    user: User, frozen_time: float
) -> None:
    """A passkey Keyfob never registered (or one removed since): refused, nothing written
    to any account."""
    register(user)
    stranger = SoftAuthenticator(transports=("internal",))
    stranger.create(
        {
            "rp": {"id": "localhost"},
            "user": {"id": "AAAA"},
            "challenge": "AAAA",
        },
        "http://localhost",
        resident=True,
    )
    with pytest.raises(flows.KeyRefused) as refused:
        sign_in(stranger)
    assert type(refused.value) is flows.KeyRefused
    assert not SecurityEvent.objects.filter(kind=EventKind.KEY_WRONG).exists()


def test_a_replayed_answer_is_refused(user: User, frozen_time: float) -> None:
    """The same answer twice: its challenge was used. And again in a new session, with a new
    challenge: it signed the old one."""
    soft, key = register(user)
    request = web_request()
    answer = assertion(soft, passkey_options(request))
    flows.verify_key(request, Purpose.PASSWORDLESS, answer, CONTEXT)
    with pytest.raises(flows.ChallengeExpired):
        flows.verify_key(request, Purpose.PASSWORDLESS, answer, CONTEXT)
    again = web_request()
    passkey_options(again)
    with pytest.raises(flows.KeyRefused):
        flows.verify_key(again, Purpose.PASSWORDLESS, answer, CONTEXT)
    key.refresh_from_db()
    assert key.sign_count == 1


def test_an_expired_challenge_is_refused(user: User, frozen_time: float) -> None:
    """Answered one second after its 5 minutes, by Keyfob's clock."""
    soft, _ = register(user)
    request = web_request()
    answer = assertion(soft, passkey_options(request))
    late = frozen_time + app_settings.webauthn_challenge_seconds + 1
    with clock.frozen(late), pytest.raises(flows.ChallengeExpired):
        flows.verify_key(request, Purpose.PASSWORDLESS, answer, CONTEXT)
    # Just in time is fine.
    request = web_request()
    answer = assertion(soft, passkey_options(request))
    with clock.frozen(frozen_time + app_settings.webauthn_challenge_seconds - 1):
        assert flows.verify_key(request, Purpose.PASSWORDLESS, answer, CONTEXT).user == user


def test_a_challenge_of_another_session_is_refused(user: User, frozen_time: float) -> None:
    """The answer to session A's challenge, posted from session B: with no challenge of its
    own, B has none to match; with one, the signature is over A's."""
    soft, _ = register(user)
    first = web_request()
    answer = assertion(soft, passkey_options(first))
    other = web_request(new_session())
    with pytest.raises(flows.ChallengeExpired):
        flows.verify_key(other, Purpose.PASSWORDLESS, answer, CONTEXT)
    passkey_options(other)
    with pytest.raises(flows.KeyRefused):
        flows.verify_key(other, Purpose.PASSWORDLESS, answer, CONTEXT)
    # A's challenge is still A's, and still good.
    assert flows.verify_key(first, Purpose.PASSWORDLESS, answer, CONTEXT).user == user


def test_a_challenge_for_another_ceremony_is_refused(user: User, frozen_time: float) -> None:
    """A challenge given for "Confirm it is you" does not answer a sign-in without password."""
    soft, key = register(user)
    request = web_request()
    options = flows.begin(request, Purpose.REAUTH, user)
    answer = assertion(soft, options, key)
    with pytest.raises(flows.ChallengeExpired):
        flows.verify_key(request, Purpose.PASSWORDLESS, answer, CONTEXT)


def test_a_deactivated_account_does_not_sign_in(user: User, frozen_time: float) -> None:
    soft, _ = register(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    with pytest.raises(flows.KeyRefused):
        sign_in(soft)


def test_a_counter_that_goes_back_is_a_copied_key(user: User, frozen_time: float) -> None:
    soft, _ = register(user)
    sign_in(soft)
    sign_in(soft)
    with pytest.raises(flows.KeyCloned):
        sign_in(soft, sign_count=1)
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.KEY_CLONE).exists()


def lock_codes(user: User) -> None:
    """The account's one throttle made to wait, as wrong codes on any channel do."""
    with transaction.atomic():
        row = throttle.acquire(throttle.CODE, str(user.pk))
        for _ in range(throttle.CODE.free):
            throttle.record_failure(throttle.CODE, row)


def test_the_accounts_throttle_applies_once_the_key_has_signed(
    user: User, frozen_time: float
) -> None:
    """While the account waits (wrong codes on the web, SSH or the API), its own passkey is
    told to wait too: only the key's holder, whose signature was checked, learns it."""
    soft, _ = register(user)
    lock_codes(user)
    with pytest.raises(Throttled):
        sign_in(soft)
    with clock.frozen(frozen_time + timedelta(minutes=1).total_seconds()):
        assert sign_in(soft).user == user


def test_wrong_answers_without_the_password_count_on_the_address(
    user: User, frozen_time: float
) -> None:
    """Issue 22: anyone who knows a key's credential id can post answers naming it. They
    count on the client's address (with its wrong passwords), never on the account: its
    codes stay usable on every channel, and the address, not the key, is told to wait, with
    the same words whichever key was named."""
    soft, _ = register(user)
    stranger = SoftAuthenticator(transports=("internal",))
    register(make_user("zed@example.com"), stranger)
    stranger.credentials[-1].id = b"not a key anyone holds"
    for _ in range(throttle.ADDRESS.free // 2):
        with pytest.raises(flows.KeyRefused):
            sign_in(soft, bad_signature=True)
        with pytest.raises(flows.KeyRefused):
            sign_in(stranger)
    assert throttle.consecutive_failures(throttle.CODE, str(user.pk)) == 0
    assert throttle.consecutive_failures(throttle.ADDRESS, CONTEXT.address or "") == 20
    assert len(refusals(user)) == throttle.ADDRESS.free // 2  # in the activity, not counted
    for knobs in ({"bad_signature": True}, {}):  # the address waits, even for a right answer
        with pytest.raises(Throttled):
            sign_in(soft, **knobs)
    with pytest.raises(Throttled):
        sign_in(stranger)
    # The account itself is not held: its holder's app codes still work.
    assert throttle.consecutive_failures(throttle.CODE, str(user.pk)) == 0
    with clock.frozen(frozen_time + 31):
        assert sign_in(soft).user == user


@pytest.mark.parametrize(
    "knobs", [{"user_verified": False}, {"resident": False}], ids=["no uv", "not resident"]
)
def test_a_key_refused_alone_still_works_after_the_password(
    user: User, frozen_time: float, knobs: dict[str, bool]
) -> None:
    """What is refused without the password is the same key's proper use after it: the
    second factor of the account signing in (the code step's, on branch `keys`)."""
    soft, key = register(user, **knobs)
    with pytest.raises(flows.KeyRefused):
        sign_in(soft, key)
    request = web_request()
    options = flows.begin(request, Purpose.SIGNIN, user)
    answer = assertion(soft, options, key, user_verified=knobs.get("user_verified", True))
    assert flows.verify_key(request, Purpose.SIGNIN, answer, CONTEXT, user=user).pk == key.pk
