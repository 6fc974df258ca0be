"""Senders and queuers at once, each thread on its own database connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from keyfob.accounts.models import User
from keyfob.audit import gunicorn_hooks, mailer, notices
from keyfob.audit.models import Outbox, OutboxState
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock
from tests.audit.conftest import CONTEXT, T0, make_user
from tests.smtp import SmtpServer

pytestmark = pytest.mark.django_db(transaction=True)


def in_threads(n: int, work: Callable[[int], Any], timeout: float = 60.0) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released together; return results, re-raise errors."""
    barrier = threading.Barrier(n, timeout=timeout)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish in time"
    if errors:
        raise errors[0]
    return results


def test_two_senders_deliver_each_notice_exactly_once(smtp: SmtpServer) -> None:
    users = [make_user(f"user{i}@example.com") for i in range(20)]
    with clock.frozen(T0):
        with transaction.atomic():
            for user in users:
                notices.queue(user, NoticeKind.PASSWORD_CHANGED, CONTEXT)

        def sender(_i: int) -> int:
            sent = 0
            while True:
                # Small passes, so the two senders interleave over the same rows.
                report = mailer.send_pending(limit=3)
                sent += report.sent
                if report.due == 0:
                    return sent

        counts = in_threads(2, sender)

    assert sum(counts) == 20
    received = smtp.inbox.received
    assert len(received) == 20
    recipients = sorted(r for rcpts, _m in received for r in rcpts)
    assert recipients == sorted(u.email for u in users)  # each one, once
    assert all(r.state == OutboxState.SENT and r.attempts == 1 for r in Outbox.objects.all())


# Proves notices.queue's account row lock: on PostgreSQL only (issue 21; SQLite serialises
# writers anyway).
@pytest.mark.postgres
def test_concurrent_wrong_codes_make_one_notice() -> None:
    alice = make_user()

    def wrong_code(_i: int) -> bool:
        with transaction.atomic():
            return notices.queue(alice, NoticeKind.WRONG_CODES, CONTEXT) is not None

    # The clock is process-wide: frozen once here, not in each thread.
    with clock.frozen(T0):
        results = in_threads(4, wrong_code)
    assert sorted(results) == [False, False, False, True]
    assert Outbox.objects.filter(kind=NoticeKind.WRONG_CODES).count() == 1


def test_the_background_sender_delivers_and_stops(smtp: SmtpServer, settings: Any) -> None:
    settings.KEYFOB_MAIL_INTERVAL_SECONDS = 0.05
    alice: User = make_user()
    try:
        thread = mailer.start_background_sender()
        assert mailer.start_background_sender() is thread  # idempotent
        assert thread.daemon and thread.is_alive()
        with transaction.atomic():
            notices.queue(alice, NoticeKind.TWOFACTOR_ON, CONTEXT)
        assert len(smtp.inbox.wait_for(1)) == 1
    finally:
        mailer.stop_background_sender(timeout=5.0)
    assert not thread.is_alive()
    deadline = time.monotonic() + 5
    while Outbox.objects.get().state != OutboxState.SENT and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Outbox.objects.get().state == OutboxState.SENT


def test_gunicorn_hooks_start_and_stop_the_worker_sender(smtp: SmtpServer, settings: Any) -> None:
    settings.KEYFOB_MAIL_INTERVAL_SECONDS = 0.05
    try:
        gunicorn_hooks.post_worker_init(worker=None)
        thread = mailer.start_background_sender()
        assert thread.is_alive()
    finally:
        gunicorn_hooks.worker_exit(server=None, worker=None)
    assert not thread.is_alive()
