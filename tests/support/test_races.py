"""Two staff members at once: every step is one compare-and-set, so exactly one wins.

Each thread has its own database connection (SQLite here, PostgreSQL when the suite runs
again with KEYFOB_DATABASE_URL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.support import flows
from keyfob.support.models import EmailCheck, Request, State, Step
from tests.support.conftest import SITE, STAFF_CONTEXT, T0, Enrolled, enrolled

pytestmark = pytest.mark.django_db(transaction=True)


def at_once(works: list[Callable[[], Any]], timeout: float = 60.0) -> list[Any]:
    """Run the callables in threads released together; return each result or exception."""
    barrier = threading.Barrier(len(works), timeout=timeout)
    results: list[Any] = [None] * len(works)

    def run(i: int) -> None:
        try:
            with clock.frozen(T0):
                barrier.wait()
                results[i] = works[i]()
        except BaseException as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(works))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish in time"
    return results


def test_two_staff_racing_to_disable(alice: Enrolled, sam: Enrolled, tess: Enrolled) -> None:
    uma = enrolled("uma@support.example", is_staff=True)
    with clock.frozen(T0):
        req = flows.open_request(alice.user, STAFF_CONTEXT, site=SITE, staff=sam.user)
        flows.record_call(req.pk, sam.user, "confirmed", "", STAFF_CONTEXT)

    def disable_as(who: Enrolled) -> Callable[[], Any]:
        return lambda: flows.disable(req.pk, who.user, "race", STAFF_CONTEXT)

    results = at_once([disable_as(tess), disable_as(uma)])
    won = [r for r in results if isinstance(r, Request)]
    lost = [r for r in results if isinstance(r, flows.WrongState)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].state == State.COMPLETED
    assert Request.objects.get(pk=req.pk).state == State.COMPLETED
    assert req.events.filter(step=Step.DISABLED).count() == 1
    assert (
        SecurityEvent.objects.filter(user=alice.user, kind=EventKind.SUPPORT_DISABLED).count() == 1
    )
    assert Outbox.objects.filter(user=alice.user, kind=NoticeKind.TWOFACTOR_OFF).count() == 1


def test_cancel_and_disable_at_once(alice: Enrolled, sam: Enrolled, tess: Enrolled) -> None:
    with clock.frozen(T0):
        req = flows.open_request(alice.user, STAFF_CONTEXT, site=SITE)
        flows.record_call(req.pk, sam.user, "confirmed", "", STAFF_CONTEXT)
    results = at_once(
        [
            lambda: flows.disable(req.pk, tess.user, "race", STAFF_CONTEXT),
            lambda: flows.cancel(req.pk, STAFF_CONTEXT),
        ]
    )
    assert sum(isinstance(r, Request) for r in results) == 1, results
    assert sum(isinstance(r, flows.WrongState) for r in results) == 1, results
    final = Request.objects.get(pk=req.pk).state
    assert final in (State.COMPLETED, State.CANCELLED)
    has_2fa = Outbox.objects.filter(user=alice.user, kind=NoticeKind.TWOFACTOR_OFF).exists()
    assert has_2fa == (final == State.COMPLETED)


def test_wrong_codes_at_once_all_count(alice: Enrolled, sam: Enrolled) -> None:
    with clock.frozen(T0):
        req = flows.open_request(alice.user, STAFF_CONTEXT, site=SITE, staff=sam.user)
        flows.record_call(req.pk, sam.user, "no_answer", "", STAFF_CONTEXT)
        flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    check = EmailCheck.objects.get()
    wrong = [f"{n:08d}" for n in range(8)]
    results = at_once(
        [
            lambda code=code: flows.check_code(req.pk, sam.user, code, STAFF_CONTEXT)
            for code in wrong
        ]
    )
    # The right code is not among them (or one attempt succeeded); five wrong burn it.
    check.refresh_from_db()
    if check.used_at is None:
        assert check.tries == 5 and check.burnt_at is not None
        assert sum(isinstance(r, flows.CodeBurnt) for r in results) == 4
        assert sum(isinstance(r, flows.WrongCode) for r in results) == 4


def test_two_requests_opened_at_once_make_one(alice: Enrolled, sam: Enrolled) -> None:
    results = at_once(
        [
            lambda: flows.open_request(alice.user, STAFF_CONTEXT, site=SITE),
            lambda: flows.open_request(alice.user, STAFF_CONTEXT, site=SITE, staff=sam.user),
        ]
    )
    assert sum(isinstance(r, Request) for r in results) == 1, results
    assert sum(isinstance(r, flows.AlreadyActive) for r in results) == 1, results
    assert Request.objects.count() == 1
