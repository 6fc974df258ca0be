"""Issue 22: security keys and passkeys under concurrency, each thread on its own database
connection (real PostgreSQL when KEYFOB_TEST_DATABASE_URL names one; SQLite otherwise, where
they must pass too).

- 20 posts of one valid passkey answer at once: one signs in, and none is taken for a copy
  of the key (it was: the counter its twin had just moved, read before the challenge was
  spent, raised a false "your key may have been copied", its event, mail and throttle
  failure).
- The cap on live passwordless challenges is held under concurrency (31 of 30 were made), and
  holds for a whole network prefix (an IPv6 /64), not only per address.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction

from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock, throttle
from keyfob.otp import KeyfobError, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.flows.webauthn import MAX_CHALLENGES_PER_ADDRESS, MAX_CHALLENGES_PER_NETWORK
from keyfob.twofactor.models import Purpose, WebAuthnChallenge
from tests.audit.test_concurrency import in_threads
from tests.conftest import make_user
from tests.twofactor.passkeys import ORIGIN, register, web_request

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
T0 = 1_900_000_005.0
CTX = Context(address="192.0.2.1", user_agent="races")


ROUNDS = 6  # the race lost one round in about three on PostgreSQL before the fix


def test_one_passkey_answer_posted_twenty_times_at_once_is_no_copy() -> None:
    with clock.frozen(T0):
        alice = make_user("alice@example.com")
        soft, key = register(alice)
        for _round in range(ROUNDS):
            request = web_request()
            options = flows.begin(request, Purpose.PASSWORDLESS)
            session = dict(request.session.items())
            answer = json.dumps(soft.get(options, ORIGIN, credential_id=key.credential_id))

            def post(_i: int, session: dict[str, Any] = session, answer: str = answer) -> Any:
                mine = SessionStore()
                mine.update(session)
                try:
                    return flows.verify_key(web_request(mine), Purpose.PASSWORDLESS, answer, CTX)
                except KeyfobError as exc:
                    return exc

            results = in_threads(20, post)
            signed_in = [r for r in results if not isinstance(r, KeyfobError)]
            assert len(signed_in) == 1, results
            assert not [r for r in results if isinstance(r, flows.KeyCloned)], results
    assert not SecurityEvent.objects.filter(user=alice, kind=EventKind.KEY_CLONE).exists()
    assert not Outbox.objects.filter(user=alice, kind=NoticeKind.KEY_CLONE).exists()
    assert throttle.consecutive_failures(throttle.CODE, str(alice.pk)) == 0
    assert not SecurityEvent.objects.filter(user=alice, kind=EventKind.KEY_WRONG).exists()


def _ask(address: str) -> bool:
    """A client without a cookie asks for a passkey challenge from ``address``; whether it
    got one."""
    request = web_request()
    request.META["REMOTE_ADDR"] = address
    try:
        flows.begin(request, Purpose.PASSWORDLESS)
    except Throttled:
        return False
    return True


def _one_while_another_is_uncommitted(first: str, second: str) -> tuple[bool, bool]:
    """``first`` asks in a transaction left open for a moment after its challenge is
    written; ``second`` asks meanwhile, on its own connection. Return whether each got one.

    Without a lock ``second`` counts the rows committed so far, misses ``first``'s, and
    writes its own too. With the network's lock it waits for ``first`` to commit (at most
    ``HOLD`` seconds: ``first`` does not wait for it), then counts it."""
    written, done = threading.Event(), threading.Event()

    def work(i: int) -> bool:
        if i == 0:
            with transaction.atomic():
                got = _ask(first)
                written.set()
                done.wait(HOLD)  # the second one, unblocked, sets it; locked out, it cannot
            return got
        assert written.wait(30)
        try:
            return _ask(second)
        finally:
            done.set()

    a, b = in_threads(2, work)
    return a, b


HOLD = 2.0


def test_the_cap_per_address_holds_under_concurrency() -> None:
    cap = MAX_CHALLENGES_PER_ADDRESS
    with clock.frozen(T0):
        for _ in range(cap - 1):
            assert _ask("198.51.100.7")
        assert _one_while_another_is_uncommitted("198.51.100.7", "198.51.100.7") == (True, False)
        # A burst: none gets past the cap.
        assert in_threads(8, lambda _i: _ask("198.51.100.7")) == [False] * 8
    assert WebAuthnChallenge.objects.filter(address="198.51.100.7").count() == cap


def test_the_cap_holds_for_an_ipv6_network_of_many_addresses() -> None:
    """One /64 is one subscriber's network: 2^64 addresses, one cap."""
    cap = MAX_CHALLENGES_PER_NETWORK
    with clock.frozen(T0):
        asked = [_ask(f"2001:db8:1:2::{i:x}") for i in range(1, cap + 1)]
        assert all(asked)
        # Another address of the same /64 is refused; the next /64 is another network.
        assert not _ask("2001:db8:1:2:ffff::1")
        assert _ask("2001:db8:1:3::1")
    assert WebAuthnChallenge.objects.count() == cap + 1


def test_the_network_cap_holds_under_concurrency() -> None:
    cap = MAX_CHALLENGES_PER_NETWORK
    with clock.frozen(T0):
        for i in range(cap - 1):
            assert _ask(f"2001:db8:5:6::{i + 1:x}")
        assert _one_while_another_is_uncommitted("2001:db8:5:6:a::1", "2001:db8:5:6:b::1") == (
            True,
            False,
        )
        assert in_threads(8, lambda i: _ask(f"2001:db8:5:6:c::{i + 1:x}")) == [False] * 8
    assert WebAuthnChallenge.objects.count() == cap


def test_an_ipv4_network_is_a_24() -> None:
    from keyfob.twofactor.flows.webauthn import network_of

    assert network_of("192.0.2.77") == network_of("192.0.2.1") == "192.0.2.0/24"
    assert network_of("::ffff:192.0.2.9") == "192.0.2.0/24"
    assert network_of("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
