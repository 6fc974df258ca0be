"""Checking a code: verify, consume once, throttle, record, notify.

Every attempt runs under the account's code throttle row (shared by web, SSH and API), in
one transaction; a failure is committed before the exception that reports it is raised,
so a refused attempt always counts.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Exists, Q

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context, event_row, record
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock, compiled, throttle
from keyfob.core.consume import consume
from keyfob.core.models import Throttle
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.models import Authenticator, Kind, SecurityKey

T = TypeVar("T")
# A security event to record with a success: its kind and details.
Event = tuple[EventKind, dict[str, Any]]


class Factor(StrEnum):
    """What was given at a check: an authenticator app's code, a recovery code, or a
    security key's signature."""

    CODE = "code"
    RECOVERY = "recovery"
    KEY = "security_key"


# The event a refused attempt records, by factor, unless its error names its own (``event``).
_WRONG = {
    Factor.CODE: EventKind.CODE_WRONG,
    Factor.RECOVERY: EventKind.RECOVERY_WRONG,
    Factor.KEY: EventKind.KEY_WRONG,
}


class NotEnrolled(KeyfobError):
    """The account has no confirmed authenticator."""

    code = "not_enrolled"


class SetupExpired(KeyfobError):
    """The pending secret was not confirmed in time; a new one must be made."""

    code = "setup_expired"


class ClockDrift(InvalidCode):
    """The code is right for a time far from now: the device's clock is off."""

    code = "clock_drift"

    def __init__(self, steps: int, period: int) -> None:
        super().__init__("the device's clock is off")
        self.steps = steps
        self.seconds = steps * period


class LaterCodeUsed(CodeReused):
    """The code is right, but a code from a later step was used (a phone whose clock was
    fast): it, and every code before that step, works no more for ``seconds``."""

    code = "later_code_used"

    def __init__(self, seconds: int) -> None:
        super().__init__("a code from a later step was already used")
        self.seconds = seconds


def confirmed_authenticator(user: User) -> Authenticator | None:
    """The account's first confirmed authenticator (2FA is on since it was confirmed)."""
    return (
        Authenticator.objects.filter(user=user, confirmed_at__isnull=False)
        .order_by("confirmed_at", "pk")
        .first()
    )


def twofactor_since(user: User) -> datetime | None:
    """When 2FA went on: the first confirmed app's or key's time, whichever is earlier;
    None while it is off."""
    app = confirmed_authenticator(user)
    key = SecurityKey.objects.filter(user=user).order_by("created_at").first()
    times = [app.confirmed_at if app else None, key.created_at if key else None]
    return min((t for t in times if t is not None), default=None)


def confirmed_authenticators(user: User) -> list[Authenticator]:
    return list(Authenticator.objects.filter(user=user, confirmed_at__isnull=False))


def has_2fa(user: User) -> bool:
    """Whether the account has a confirmed authenticator app or a security key."""
    return (
        Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()
        or SecurityKey.objects.filter(user=user).exists()
    )


def _record_success(user: User, context: Context, event: Event | None) -> None:
    """Record the success ``event``, if any (inside the consuming transaction)."""
    if event is not None:
        kind, detail = event
        record(user, kind, context, **detail)


def throttled_attempt(
    user: User,
    context: Context,
    factor: Factor,
    attempt: Callable[[], T],
    event: Event | None = None,
    *,
    failure_detail: dict[str, Any] | None = None,
    weight: int = 1,
) -> T:
    """Run ``attempt`` under the account's throttle; count it if it raises.

    ``event`` is recorded after a successful attempt, in the same transaction;
    ``failure_detail`` goes with the event of a refused one (which key was refused);
    ``weight`` is how many of the day's failures a wrong code counts as
    (:func:`guess_weight`).

    ``attempt`` returns its result, or raises :class:`InvalidCode` / :class:`CodeReused`
    before it has written anything (each attempt's first write is its compare-and-set, so
    no savepoint is needed to undo it; the failure is then recorded and committed).
    Raises :class:`Throttled` without calling ``attempt`` while the account waits.
    """
    failure: KeyfobError
    # No savepoints: a refusal is raised after this block, so nothing in it has to be
    # rolled back alone, and a savepoint is a round trip on PostgreSQL.
    with transaction.atomic(savepoint=False):
        row = throttle.acquire(throttle.CODE, str(user.pk))
        try:
            throttle.check(throttle.CODE, row, weight)
        except Throttled as exc:
            record(user, EventKind.THROTTLED, context, factor=factor)
            failure = exc
        else:
            try:
                result = attempt()
            except CodeReused as exc:
                throttle.record_failure(throttle.CODE, row)
                record(user, EventKind.CODE_REUSED, context, factor=factor)
                failure = exc
            except InvalidCode as exc:
                throttle.record_failure(throttle.CODE, row, weight)
                kind = getattr(exc, "event", None) or _WRONG[factor]
                record(user, kind, context, **(failure_detail or {}))
                failure = exc
            except KeyfobError as exc:  # not enrolled, setup expired: nothing to count
                failure = exc
            else:
                throttle.reset(row)
                _record_success(user, context, event)
                return result
    raise failure


def _match(auth: Authenticator, code: str, at: float) -> int | None:
    """The step (TOTP) or counter (HOTP) ``code`` matches, or None."""
    secret = auth.secret()
    if auth.kind == Kind.HOTP:
        return otp.verify_hotp(
            secret, code, auth.counter, digits=auth.digits, algorithm=auth.algorithm
        )
    # Match without last_step: a code of an already used step must read as reused, not
    # wrong, and the compare-and-set in _consume is what refuses it.
    return otp.verify_totp(
        secret,
        code,
        at,
        window=app_settings.totp_window,
        period=auth.period,
        digits=auth.digits,
        algorithm=auth.algorithm,
    )


def _wrong_code(
    auths: Sequence[Authenticator], code: str, at: float
) -> tuple[Authenticator | None, InvalidCode]:
    """The error for a code that matched nothing: a clock far off is worth naming, with the
    authenticator whose clock it is."""
    for auth in auths:
        if auth.kind != Kind.TOTP:
            continue
        drift = otp.drift_steps(
            auth.secret(),
            code,
            at,
            max_steps=app_settings.drift_max_steps,
            period=auth.period,
            digits=auth.digits,
            algorithm=auth.algorithm,
        )
        if drift:
            return auth, ClockDrift(drift, auth.period)
    return None, InvalidCode("wrong code")


def _unused(
    auth: Authenticator, matched: int, *, confirm: bool = False
) -> tuple[Q, dict[str, Any]]:
    """The condition that ``matched`` is still unused on ``auth`` (DESIGN.md invariant 1),
    and the changes that use it up: TOTP's last step, HOTP's counter, and the confirmation
    of a pending authenticator. When it was last used is written by the same statement."""
    changes: dict[str, object]
    if auth.kind == Kind.HOTP:
        condition, changes = Q(counter__lte=matched), {"counter": matched + 1}
    else:
        condition, changes = Q(last_step__lt=matched), {"last_step": matched}
    changes["last_used_at"] = clock.now()
    if confirm:
        condition &= Q(confirmed_at__isnull=True)
        changes["confirmed_at"] = clock.now()
    return Q(pk=auth.pk) & condition, changes


def _consume(auth: Authenticator, matched: int, *, confirm: bool) -> bool:
    """Move the step/counter past ``matched`` unless someone already did."""
    condition, changes = _unused(auth, matched, confirm=confirm)
    return consume(Authenticator.objects.filter(condition), **changes)


def _consume_unthrottled(
    user: User, auth: Authenticator, matched: int, context: Context, event: Event | None
) -> bool:
    """A right code on an account with no failure on record, consumed without the lock.

    That is nearly every code, and for it the locked path has nothing to do but look: no
    wait can apply and there is no count to reset. So the compare-and-set carries one more
    condition, that the account's code throttle has no failure (none in a row, no wait, none
    in the last day), and the success ``event`` is written in the same transaction. Returns
    False, having changed nothing, when the step is already used or the account has a
    failure on record: :func:`throttled_attempt` then decides under the lock and says which.

    A failure committed meanwhile by a concurrent attempt does not undo this success: the
    success is ordered before it, and the failure still counts.
    """
    now = clock.now()
    # Built before the transaction starts (on SQLite, writers wait for its lock).
    statement = _UNTHROTTLED[Kind(auth.kind)]
    values: dict[str, object] = {
        "pk": auth.pk,
        "matched": matched,
        "used": now,
        "key": str(user.pk),
        "since": now - throttle.DAY,
    }
    if auth.kind == Kind.HOTP:
        values["after"] = matched + 1
    event_values = None if event is None else event_row(user, event[0], context, **event[1])
    # No savepoint when nested: nothing is written before the compare-and-set.
    with transaction.atomic(savepoint=False):
        if statement.run(values) != 1:
            return False
        if event_values is not None:
            _EVENT.run(event_values)
    return True


def _has_failures(key: str, since: datetime) -> Exists:
    """Whether the account's code throttle has a failure on record: one in a row, a wait,
    or one in the last day."""
    return Exists(
        Throttle.objects.filter(scope=throttle.CODE.scope, key=key).filter(
            Q(consecutive__gt=0) | Q(locked_until__isnull=False) | Q(last_failure_at__gt=since)
        )
    )


# The statements of a right code on a clean account, compiled once (core.compiled): the
# compare-and-set of :func:`_unused` guarded by :func:`_has_failures`, by kind, and the
# success event.
_SAMPLES = {"pk": 0, "matched": 0, "used": clock.now(), "key": "", "since": clock.now()}
_UNTHROTTLED = {
    Kind.TOTP: compiled.Update(
        lambda pk, matched, used, key, since: (
            Authenticator.objects.filter(pk=pk, last_step__lt=matched)
            .filter(~_has_failures(key, since))
            .update(last_step=matched, last_used_at=used)
        ),
        **_SAMPLES,
    ),
    Kind.HOTP: compiled.Update(
        lambda pk, matched, used, key, since, after: (
            Authenticator.objects.filter(pk=pk, counter__lte=matched)
            .filter(~_has_failures(key, since))
            .update(counter=after, last_used_at=used)
        ),
        **_SAMPLES,
        after=0,
    ),
}
_EVENT = compiled.Insert(
    lambda **row: SecurityEvent.objects.create(**row),
    user_id=0,
    kind="",
    at=clock.now(),
    channel="",
    address=ipaddress.ip_address("192.0.2.1"),
    user_agent="",
    detail={},
)


@dataclass(frozen=True)
class _CodeCheck:
    """A code read and matched before any lock; called, it is the attempt that consumes it.

    The reading and the HMACs (those of a clock far off too) are done before
    :func:`throttled_attempt` takes the throttle's lock (on SQLite, the database's one write
    lock), so the lock is held for the writes alone. A stale read is harmless: the
    compare-and-set decides, and a row changed meanwhile makes the attempt fail. The attempt
    raises what a check raises, under the lock.
    """

    auths: Sequence[Authenticator]
    auth: Authenticator | None  # the one the code matched
    matched: int | None
    at: float
    confirm: bool
    # A code that matched nothing: the error it gets, and the authenticator whose clock is
    # that far off (if any).
    wrong: InvalidCode | None = None
    drifted: Authenticator | None = None

    def spend_ahead(self) -> None:
        """A code for a later step must not become usable then: the "fast clock" answer
        would tell a guesser a code to type later. So that step, and every one before it,
        is spent (its write is committed with the failure)."""
        wrong = self.wrong
        if self.drifted is not None and isinstance(wrong, ClockDrift) and wrong.steps > 0:
            ahead = int(self.at // self.drifted.period) + wrong.steps
            consume(
                Authenticator.objects.filter(pk=self.drifted.pk, last_step__lt=ahead),
                last_step=ahead,
            )

    def __call__(self) -> Authenticator:
        if not self.auths:
            raise SetupExpired() if self.confirm else NotEnrolled()
        if self.auth is None or self.matched is None:
            assert self.wrong is not None
            self.spend_ahead()
            raise self.wrong
        if not _consume(self.auth, self.matched, confirm=self.confirm):
            last = self.auth.last_step  # as read: a later step makes the wait known
            if self.auth.kind == Kind.TOTP and last > self.matched:
                raise LaterCodeUsed(math.ceil((last + 1) * self.auth.period - self.at))
            raise CodeReused("this code was already used")
        return self.auth


def code_check(
    user: User, code: str, *, confirm: bool, auths: Sequence[Authenticator] | None = None
) -> _CodeCheck:
    """Match ``code`` against the account's confirmed authenticators (or, with ``confirm``,
    its pending one): the first that it matches is the one it is for. One read; the attempts
    share the account's one throttle, so more apps do not mean more tries."""
    at = clock.time()
    if auths is None:
        auths = list(Authenticator.objects.filter(user=user, confirmed_at__isnull=confirm))
    assert all(a.user_id == user.pk and a.is_confirmed != confirm for a in auths)
    for auth in auths:
        matched = _match(auth, code, at)
        if matched is not None:
            return _CodeCheck(auths, auth, matched, at, confirm)
    if not auths:
        return _CodeCheck(auths, None, None, at, confirm)
    drifted, wrong = _wrong_code(auths, code, at)
    return _CodeCheck(auths, None, None, at, confirm, wrong, drifted)


def _fail_unlocked(user: User, check: _CodeCheck, context: Context) -> bool:
    """A wrong code counted and recorded without the throttle's lock: one compare-and-set on
    the throttle's row (:func:`throttle.count_unchanged`), the failure's record, and the
    clock-drift spend if any, in one transaction; that is what a success costs, give or take
    the failure's own row. Returns False, having counted nothing, when the throttle refuses
    the attempt or a concurrent attempt changed its counters since they were read:
    :func:`throttled_attempt` then decides under the lock.
    """
    assert check.wrong is not None
    key = str(user.pk)
    seen = throttle.peek(throttle.CODE, key)
    if seen.refuses(throttle.CODE, clock.now()):
        return False
    kind = getattr(check.wrong, "event", None) or _WRONG[Factor.CODE]
    event = event_row(user, kind, context)  # built before the transaction starts
    try:
        with transaction.atomic(savepoint=False):
            if not throttle.count_unchanged(throttle.CODE, key, seen):
                return False
            check.spend_ahead()
            _EVENT.run(event)
    except IntegrityError:  # a concurrent first failure made the throttle's row: undone
        return False
    return True


# What _match gives otp.verify_hotp: its default look-ahead (a test holds them equal).
HOTP_LOOK_AHEAD = 10


def guess_weight(auths: Sequence[Authenticator], code: str) -> int:
    """How many of the day's throttle failures a wrong ``code`` counts as (issue 22).

    A code is compared with every app of the account: a time-based app at window w tries
    2w + 1 steps, a counter-based one its counter and the HOTP_LOOK_AHEAD after it, so a
    guess matches any of V = sum of those values (apps whose codes have another length
    cannot match it and are not counted). One time-based app tries V1 = 2w + 1 (3 at the
    default window). A guess then counts as ceil(V / V1) failures of the daily allowance
    (throttle.CODE.daily = 100), so the values a guesser can try in a day stay within
    daily * V1, whatever the number and kind of apps:

        one TOTP app, w = 1:   V = 3,   weight 1,  100 guesses/day → 300 values → 0.03 %
        one HOTP app:          V = 11,  weight 4,   25 guesses/day → 275 values → 0.0275 %
        10 HOTP apps:          V = 110, weight 37,   2 guesses/day → 220 values → 0.022 %
        10 TOTP apps, w = 1:   V = 30,  weight 10,  10 guesses/day → 300 values → 0.03 %

    (odds of 6-digit codes: values / 10^6.) A guess is allowed only while its weight still
    fits in the day (throttle.check), so the last one cannot overshoot. The consecutive
    count, which times the waits between tries, still counts one per guess: one typo waits
    no longer with more apps. The weight is capped at the daily allowance (only reached
    with KEYFOB_TOTP_WINDOW=0 and ten counter-based apps: one guess a day, 110 values).
    """
    one_app = 2 * app_settings.totp_window + 1
    values = sum(
        HOTP_LOOK_AHEAD + 1 if auth.kind == Kind.HOTP else one_app
        for auth in auths
        if auth.digits == len(code)
    )
    return max(1, math.ceil(values / one_app))


def verify_code(
    user: User,
    code: str,
    context: Context,
    *,
    after_password: bool = False,
    event: Event | None = None,
    authenticators: Sequence[Authenticator] | None = None,
) -> Authenticator:
    """Check a code from one of the account's authenticators and consume it; return the
    authenticator it was from.

    ``event`` (a kind and its details) is recorded in the transaction that consumed the
    code, to say what the code was for, with the name of the authenticator it matched.
    ``authenticators`` are the account's confirmed ones when the caller has just read them
    (saves a query; the compare-and-set still decides).

    With ``after_password`` (the sign-in's code step), the third wrong code in a row warns
    the account holder by e-mail that someone may know the password (at most hourly; one
    typo is not worth a fright).
    Raises :class:`Throttled` (even for a right code while the account waits),
    :class:`CodeReused`, :class:`ClockDrift`, :class:`InvalidCode` or :class:`NotEnrolled`.
    """
    check = code_check(user, code, confirm=False, auths=authenticators)
    if event is not None and check.auth is not None:
        event = (event[0], {**event[1], "authenticator": check.auth.label})
    try:
        weight = guess_weight(check.auths, code)
        if check.auth is not None and check.matched is not None:
            if _consume_unthrottled(user, check.auth, check.matched, context, event):
                return check.auth
        elif check.wrong is not None and weight == 1 and _fail_unlocked(user, check, context):
            # A guess worth one value's try (one time-based app) is counted without the
            # throttle's lock; a heavier one (issue 22) goes through the lock, which counts
            # its weight against the day's allowance.
            raise check.wrong
        return throttled_attempt(user, context, Factor.CODE, check, event, weight=weight)
    except InvalidCode:
        if after_password and throttle.consecutive_failures(throttle.CODE, str(user.pk)) >= 3:
            with transaction.atomic():
                notices.queue(user, NoticeKind.WRONG_CODES, context)
        raise
