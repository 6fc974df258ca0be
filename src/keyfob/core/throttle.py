"""Failure throttling shared by every channel (DESIGN.md invariant 2).

A scope names what is being guessed ("code" for an account's second factor, "password"
for an account's password, "address" for one client address). Each (scope, key) has one
row; a check takes that row's lock first, so every process and channel counting failures
for it queues behind one another and no failure is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from keyfob.core import clock
from keyfob.core.models import Throttle, ThrottleFailure
from keyfob.otp import Throttled

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Policy:
    """``free`` consecutive failures pass; then a delay of ``base`` doubling up to ``cap``.

    ``daily`` bounds the failures of any 24-hour span, whatever their timing. ``decay``:
    after that long without a failure the consecutive count starts again (for a count that
    no success resets, see ADDRESS).
    """

    scope: str
    free: int
    base: timedelta
    cap: timedelta
    daily: int
    decay: timedelta | None = None

    def delay(self, consecutive: int) -> timedelta:
        if consecutive < self.free:
            return timedelta(0)
        doublings = min(consecutive - self.free, 30)
        return min(self.base * (1 << doublings), self.cap)


CODE = Policy("code", free=5, base=timedelta(seconds=30), cap=timedelta(minutes=15), daily=100)
PASSWORD = Policy(
    "password", free=5, base=timedelta(seconds=30), cap=timedelta(minutes=15), daily=100
)
# A client address is never reset by a success (one account of one's own would clear a
# spraying counter): its consecutive count only decays, after an hour without a failure.
ADDRESS = Policy(
    "address",
    free=20,
    base=timedelta(seconds=30),
    cap=timedelta(minutes=15),
    daily=1000,
    decay=timedelta(hours=1),
)


def acquire(policy: Policy, key: str) -> Throttle:
    """Return the (scope, key) row, locked until the surrounding transaction ends.

    The row's lock (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite the database's one
    write lock, which every Keyfob transaction takes at BEGIN IMMEDIATE) is what makes
    every process and channel counting failures for it wait for one another. The counters
    are read once the lock is held. The row is made on first use: a concurrent first use
    makes it too, and the loser's insert, undone alone (savepoint), finds it then.
    """
    assert transaction.get_connection().in_atomic_block, "acquire() needs a transaction"
    rows = Throttle.objects.select_for_update().filter(scope=policy.scope, key=key)
    row = rows.first()
    if row is None:
        try:
            with transaction.atomic():
                row = Throttle.objects.create(scope=policy.scope, key=key)
        except IntegrityError:
            row = rows.get()
    return row


def retry_after(policy: Policy, row: Throttle, weight: int = 1) -> float:
    """Seconds before the next attempt is allowed (0.0 when allowed now).

    ``weight``: how many failures the attempt would count if it failed (see
    :func:`record_failure`); it is allowed only if that many still fit in the day's."""
    now = clock.now()
    waits = [0.0]
    if row.locked_until is not None and row.locked_until > now:
        waits.append((row.locked_until - now).total_seconds())
    if row.last_failure_at is not None and row.last_failure_at > now - DAY:
        recent = ThrottleFailure.objects.filter(throttle=row, at__gt=now - DAY)
        weight = min(max(weight, 1), policy.daily)
        if recent.count() + weight > policy.daily:
            # Allowed again when enough of the span's failures have aged out.
            index = policy.daily - weight
            oldest = recent.order_by("-at").values_list("at", flat=True)[index]
            waits.append((oldest + DAY - now).total_seconds())
    return max(waits)


def check(policy: Policy, row: Throttle, weight: int = 1) -> None:
    """Raise :class:`Throttled` when ``row`` (from :func:`acquire`) refuses attempts now
    (attempts of ``weight``, see :func:`record_failure`)."""
    wait = retry_after(policy, row, weight)
    if wait > 0:
        raise Throttled(wait)


def record_failure(policy: Policy, row: Throttle, weight: int = 1) -> float:
    """Count one failure on a locked row; return the delay it imposes (seconds).

    ``weight`` > 1 counts it as that many failures of the day's allowance (at most the
    whole of it), not of the consecutive count, which times the waits: a guess that was
    compared with more values uses up more of the day (issue 22, see
    ``twofactor.flows.verify.guess_weight``), while one typo waits no longer."""
    now = clock.now()
    quiet = (
        policy.decay is not None
        and row.last_failure_at is not None
        and row.last_failure_at <= now - policy.decay
    )
    Throttle.objects.filter(pk=row.pk).update(
        consecutive=1 if quiet else F("consecutive") + 1, last_failure_at=now
    )
    row.refresh_from_db(fields=["consecutive", "last_failure_at"])
    delay = policy.delay(row.consecutive)
    if delay:
        Throttle.objects.filter(pk=row.pk).update(locked_until=now + delay)
    weight = min(max(weight, 1), policy.daily)
    if weight == 1:
        ThrottleFailure.objects.create(throttle=row, at=now)
    else:
        ThrottleFailure.objects.bulk_create(
            [ThrottleFailure(throttle=row, at=now) for _ in range(weight)]
        )
    ThrottleFailure.objects.filter(throttle=row, at__lte=now - DAY).delete()
    return delay.total_seconds()


def consecutive_failures(policy: Policy, key: str) -> int:
    row = Throttle.objects.filter(scope=policy.scope, key=key).first()
    return row.consecutive if row is not None else 0


def reset(row: Throttle) -> None:
    """A success of the factor clears the consecutive count (not the daily record)."""
    if row.consecutive or row.locked_until is not None:
        Throttle.objects.filter(pk=row.pk).update(consecutive=0, locked_until=None)


def prune_idle() -> int:
    """Delete the rows that have been quiet for a day: no failure, no wait, not made in the
    last day (so a row an attempt is using right now stays). Return how many went.

    A pruned row holds nothing a check needs: its daily failures have aged out and its
    count would restart anyway. Run by the mail sender's hourly pass and by
    ``keyfob prune-activity``.
    """
    now = clock.now()
    idle = Throttle.objects.filter(
        Q(last_failure_at__isnull=True) | Q(last_failure_at__lte=now - DAY),
        Q(locked_until__isnull=True) | Q(locked_until__lte=now),
        updated__lte=now - DAY,
    )
    _total, by_model = idle.delete()  # the total counts their failures too
    return by_model.get(Throttle._meta.label, 0)
