"""Failure throttling shared by every channel (DESIGN.md invariant 2).

A scope names what is being guessed ("code" for an account's second factor, "password"
for an account's password, "address" for one client address). Each (scope, key) has one
row; a check takes that row's lock first, so every process and channel counting failures
for it queues behind one another and no failure is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from keyfob.core import clock, compiled
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

# An OpenID Connect client's failed token requests (a wrong secret, a code or refresh token
# it does not hold), per client *and* address: not per account (invariant 2 is about
# accounts; a client is not one), and not per client alone, or anyone could lock a
# provider's app out by sending its client id with a wrong secret. Like ADDRESS, a count
# that decays, and a success of that client from that address resets it.
OIDC_CLIENT = Policy(
    "oidc-client",
    free=10,
    base=timedelta(seconds=30),
    cap=timedelta(minutes=15),
    daily=500,
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
    """Count one failure on a locked row (from :func:`acquire`); return the delay it imposes
    (seconds).

    The row was read under its lock, so its count is exact: the new values are written by
    one UPDATE, and the failure's time by one INSERT. Failures over a day old are deleted
    by :func:`prune_idle`, not here: they no longer count (``at`` is compared with now).

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
    row.consecutive = 1 if quiet else row.consecutive + 1
    row.last_failure_at = now
    delay = policy.delay(row.consecutive)
    if delay:
        row.locked_until = now + delay
    Throttle.objects.filter(pk=row.pk).update(
        consecutive=row.consecutive, last_failure_at=now, locked_until=row.locked_until
    )
    weight = min(max(weight, 1), policy.daily)
    if weight == 1:
        ThrottleFailure.objects.create(throttle=row, at=now)
    else:
        ThrottleFailure.objects.bulk_create(
            [ThrottleFailure(throttle=row, at=now) for _ in range(weight)]
        )
    return delay.total_seconds()


@dataclass(frozen=True)
class Seen:
    """A (scope, key) row's counters as read without its lock (:func:`peek`): what
    :func:`count_unchanged` compares before it counts. ``recent`` is how many failures the
    last 24 hours hold; ``pk`` is None when there is no row yet (counters at rest)."""

    pk: int | None
    consecutive: int = 0
    locked_until: datetime | None = None
    last_failure_at: datetime | None = None
    recent: int = 0

    def refuses(self, policy: Policy, now: datetime) -> bool:
        """Whether these counters refuse an attempt at ``now`` (a wait, or the daily cap)."""
        waiting = self.locked_until is not None and self.locked_until > now
        return waiting or self.recent >= policy.daily


# The statements of a failure counted without the lock, compiled once (core.compiled).
_PEEK = compiled.Select(
    Throttle,
    lambda scope, key, since: (
        Throttle.objects.filter(scope=scope, key=key)
        .only("id", "consecutive", "locked_until", "last_failure_at")
        .annotate(recent=Count("failures", filter=Q(failures__at__gt=since)))
        .order_by()
    ),
    scope="",
    key="",
    since=clock.now(),
)
_FIRST = compiled.Insert(
    lambda scope, key, consecutive, locked_until, at: Throttle.objects.create(
        scope=scope,
        key=key,
        consecutive=consecutive,
        locked_until=locked_until,
        last_failure_at=at,
        updated=at,
    ),
    scope="",
    key="",
    consecutive=0,
    locked_until=clock.now(),
    at=clock.now(),
)
_COUNT = compiled.Update(
    lambda pk, was, was_locked, was_failed, consecutive, locked_until, at: Throttle.objects.filter(
        pk=pk,
        consecutive=was,
        locked_until=was_locked,  # an exact match; None is IS NULL
        last_failure_at=was_failed,
    ).update(consecutive=consecutive, last_failure_at=at, locked_until=locked_until),
    pk=0,
    was=0,
    was_locked=clock.now(),
    was_failed=clock.now(),
    consecutive=0,
    locked_until=clock.now(),
    at=clock.now(),
)
_FAILURE = compiled.Insert(
    lambda throttle, at: ThrottleFailure.objects.create(throttle_id=throttle, at=at),
    throttle=0,
    at=clock.now(),
)


def peek(policy: Policy, key: str) -> Seen:
    """The (scope, key) counters, read in one query without a lock or a transaction."""
    since = clock.now() - DAY
    for row in _PEEK.rows({"scope": policy.scope, "key": key, "since": since}):
        recent = int(row.recent)  # type: ignore[attr-defined]
        return Seen(row.pk, row.consecutive, row.locked_until, row.last_failure_at, recent)
    return Seen(None)


def count_unchanged(policy: Policy, key: str, seen: Seen) -> bool:
    """Count one failure of (scope, key), without :func:`acquire`'s lock, if its counters
    are still ``seen`` (from :func:`peek`) and let the attempt through; return whether it
    was counted. Call inside a transaction, which the failure's record then joins.

    A compare-and-set on the row, as single use is: the new counters are worked out from
    ``seen`` and written by one UPDATE whose condition is that the row still holds
    ``seen``. Any failure counted, or success reset, since the read changed the row, so the
    UPDATE changes nothing and False is returned: the caller then decides under the lock
    (:func:`acquire`, :func:`check`, :func:`record_failure`), as it does when ``seen``
    refuses the attempt. With no row yet, the row is made with the failure counted; if a
    concurrent attempt made it first, that INSERT raises IntegrityError, the transaction is
    undone, and the caller decides under the lock. Every failure is counted once.
    """
    assert policy.decay is None, "a decaying count is counted under the lock"
    assert transaction.get_connection().in_atomic_block, "count_unchanged() needs a transaction"
    now = clock.now()
    if seen.refuses(policy, now):
        return False
    consecutive = seen.consecutive + 1
    delay = policy.delay(consecutive)
    locked_until = now + delay if delay else seen.locked_until
    counted = {"consecutive": consecutive, "locked_until": locked_until, "at": now}
    if seen.pk is None:
        pk = _FIRST.run({"scope": policy.scope, "key": key, **counted})
    else:
        pk = seen.pk
        unchanged = {
            "was": seen.consecutive,
            "was_locked": seen.locked_until,
            "was_failed": seen.last_failure_at,
        }
        if _COUNT.run({"pk": pk, **unchanged, **counted}) != 1:
            return False
    _FAILURE.run({"throttle": pk, "at": now})
    return True


def consecutive_failures(policy: Policy, key: str) -> int:
    row = Throttle.objects.filter(scope=policy.scope, key=key).first()
    return row.consecutive if row is not None else 0


def reset(row: Throttle) -> None:
    """A success of the factor clears the consecutive count (not the daily record)."""
    if row.consecutive or row.locked_until is not None:
        Throttle.objects.filter(pk=row.pk).update(consecutive=0, locked_until=None)


def prune_idle() -> int:
    """Delete the rows that have been quiet for a day: no failure, no wait, not made in the
    last day (so a row an attempt is using right now stays), and every failure over a day
    old (no check counts it any more). Return how many rows went.

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
    ThrottleFailure.objects.filter(at__lte=now - DAY).delete()
    return by_model.get(Throttle._meta.label, 0)
