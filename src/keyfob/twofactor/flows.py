"""What happens when a code is entered: verify, consume once, throttle, record, notify.

Every attempt runs under the account's code throttle row (shared by web, SSH and API), in
one transaction; a failure is committed before the exception that reports it is raised,
so a refused attempt always counts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Exists, Q

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.audit.useragent import describe
from keyfob.core import clock, throttle
from keyfob.core.consume import consume
from keyfob.core.models import Throttle
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.models import Authenticator, Kind, RecoveryCode, TrustedBrowser

T = TypeVar("T")
# A security event to record with a success: its kind and details.
Event = tuple[EventKind, dict[str, Any]]
RECOVERY_CODES = 10


class Factor(StrEnum):
    """What was typed at a code check: an authenticator's code or a recovery code."""

    CODE = "code"
    RECOVERY = "recovery"


class By(StrEnum):
    """Who turned 2FA off: the account holder, or support after an identity check."""

    USER = "user"
    SUPPORT = "support"


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
        self.seconds = steps * period


def confirmed_authenticator(user: User) -> Authenticator | None:
    return Authenticator.objects.filter(user=user, confirmed_at__isnull=False).first()


def has_2fa(user: User) -> bool:
    return Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()


def _record_success(user: User, context: Context, event: Event | None) -> None:
    """Record the success ``event``, if any (inside the consuming transaction)."""
    if event is not None:
        kind, detail = event
        record(user, kind, context, **detail)


def _attempt(
    user: User,
    context: Context,
    factor: Factor,
    attempt: Callable[[], T],
    event: Event | None = None,
) -> T:
    """Run ``attempt`` under the account's throttle; count it if it raises.

    ``event`` is recorded after a successful attempt, in the same transaction.

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
            throttle.check(throttle.CODE, row)
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
                throttle.record_failure(throttle.CODE, row)
                kind = (
                    EventKind.RECOVERY_WRONG if factor == Factor.RECOVERY else EventKind.CODE_WRONG
                )
                record(user, kind, context)
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


def _wrong_code(auth: Authenticator, code: str, at: float) -> InvalidCode:
    """The error for a code that matched nothing: a clock far off is worth naming."""
    if auth.kind == Kind.TOTP:
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
            return ClockDrift(drift, auth.period)
    return InvalidCode("wrong code")


def _unused(
    auth: Authenticator, matched: int, *, confirm: bool = False
) -> tuple[Q, dict[str, Any]]:
    """The condition that ``matched`` is still unused on ``auth`` (DESIGN.md invariant 1),
    and the changes that use it up: TOTP's last step, HOTP's counter, and the confirmation
    of a pending authenticator."""
    changes: dict[str, object]
    if auth.kind == Kind.HOTP:
        condition, changes = Q(counter__lte=matched), {"counter": matched + 1}
    else:
        condition, changes = Q(last_step__lt=matched), {"last_step": matched}
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
    failure on record: :func:`_attempt` then decides under the lock and says which.

    A failure committed meanwhile by a concurrent attempt does not undo this success: the
    success is ordered before it, and the failure still counts.
    """
    condition, changes = _unused(auth, matched)
    failures = Throttle.objects.filter(scope=throttle.CODE.scope, key=str(user.pk)).filter(
        Q(consecutive__gt=0)
        | Q(locked_until__isnull=False)
        | Q(last_failure_at__gt=clock.now() - throttle.DAY)
    )
    # No savepoint when nested: nothing is written before the compare-and-set.
    with transaction.atomic(savepoint=False):
        if not consume(Authenticator.objects.filter(condition, ~Exists(failures)), **changes):
            return False
        _record_success(user, context, event)
    return True


@dataclass(frozen=True)
class _CodeCheck:
    """A code read and matched before any lock; called, it is the attempt that consumes it.

    The reading and the HMACs are done before :func:`_attempt` takes the throttle's lock
    (on SQLite, the database's one write lock), so the lock is held for the writes alone.
    A stale read is harmless: the compare-and-set decides, and a row changed meanwhile
    makes the attempt fail. The attempt raises what a check raises, under the lock.
    """

    auth: Authenticator | None
    matched: int | None
    code: str = field(repr=False)  # never in a log line
    at: float
    confirm: bool

    def __call__(self) -> Authenticator:
        if self.auth is None:
            raise SetupExpired() if self.confirm else NotEnrolled()
        if self.matched is None:
            raise _wrong_code(self.auth, self.code, self.at)
        if not _consume(self.auth, self.matched, confirm=self.confirm):
            raise CodeReused("this code was already used")
        return self.auth


def _code_attempt(
    user: User, code: str, *, confirm: bool, auth: Authenticator | None = None
) -> _CodeCheck:
    at = clock.time()
    if auth is None:
        auth = Authenticator.objects.filter(user=user, confirmed_at__isnull=confirm).first()
    else:
        assert auth.user_id == user.pk and auth.is_confirmed != confirm
    matched = None if auth is None else _match(auth, code, at)
    return _CodeCheck(auth, matched, code, at, confirm)


def verify_code(
    user: User,
    code: str,
    context: Context,
    *,
    after_password: bool = False,
    event: Event | None = None,
    authenticator: Authenticator | None = None,
) -> None:
    """Check a code from the account's authenticator and consume it.

    ``event`` (a kind and its details) is recorded in the transaction that consumed the
    code, to say what the code was for. ``authenticator`` is the account's confirmed
    authenticator when the caller has just read it (saves a query; the compare-and-set
    still decides).

    With ``after_password`` (the sign-in's code step), the third wrong code in a row warns
    the account holder by e-mail that someone may know the password (at most hourly; one
    typo is not worth a fright).
    Raises :class:`Throttled` (even for a right code while the account waits),
    :class:`CodeReused`, :class:`ClockDrift`, :class:`InvalidCode` or :class:`NotEnrolled`.
    """
    check = _code_attempt(user, code, confirm=False, auth=authenticator)
    if (
        check.auth is not None
        and check.matched is not None
        and _consume_unthrottled(user, check.auth, check.matched, context, event)
    ):
        return
    try:
        _attempt(user, context, Factor.CODE, check, event)
    except InvalidCode:
        if after_password and throttle.consecutive_failures(throttle.CODE, str(user.pk)) >= 3:
            with transaction.atomic():
                notices.queue(user, NoticeKind.WRONG_CODES, context)
        raise


# Setup -------------------------------------------------------------------------------


def start_setup(user: User, kind: str = Kind.TOTP) -> Authenticator:
    """Return the account's pending authenticator of ``kind``, making a new secret if needed.

    Raises :class:`KeyfobError` if 2FA is already on: it must be turned off first.
    """
    with transaction.atomic():
        existing = Authenticator.objects.filter(user=user).first()
        if existing is not None and existing.is_confirmed:
            raise KeyfobError("two-factor authentication is already on")
        if existing is not None and existing.kind == kind and not setup_expired(existing):
            return existing
        if existing is not None:
            existing.delete()
        auth = Authenticator(user=user, kind=kind)
        auth.set_secret(otp.random_secret(20))
        auth.save()
        return auth


def setup_expired(auth: Authenticator) -> bool:
    limit = timedelta(seconds=app_settings.pending_setup_seconds)
    return not auth.is_confirmed and clock.now() - auth.created_at > limit


def confirm_setup(user: User, code: str, context: Context) -> list[str]:
    """Activate the pending authenticator with a code from the app.

    Returns the new recovery codes, to be shown once. Raises :class:`SetupExpired` if the
    pending secret is older than the limit, and what :func:`verify_code` raises.
    """
    pending = Authenticator.objects.filter(user=user, confirmed_at__isnull=True).first()
    if pending is None or setup_expired(pending):
        raise SetupExpired()
    check = _code_attempt(user, code, confirm=True)

    def attempt() -> list[str]:
        auth = check()
        codes = replace_recovery_codes(user)
        record(user, EventKind.TWOFACTOR_ON, context, method=auth.kind)
        notices.queue(user, NoticeKind.TWOFACTOR_ON, context)
        return codes

    return _attempt(user, context, Factor.CODE, attempt)


def disable(user: User, context: Context, *, by: By = By.USER) -> None:
    """Turn 2FA off: authenticator, recovery codes and trusted browsers all go."""
    with transaction.atomic():
        deleted, _ = Authenticator.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        TrustedBrowser.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        if deleted:
            record(user, EventKind.TWOFACTOR_OFF, context, by=by)
            notices.queue(user, NoticeKind.TWOFACTOR_OFF, context, by=by)


def key_uri(user: User, auth: Authenticator) -> otp.KeyURI:
    return otp.KeyURI(
        kind=auth.kind,
        secret=auth.secret(),
        account=user.email,
        issuer=app_settings.issuer,
        algorithm=auth.algorithm,
        digits=auth.digits,
        # Each kind carries only its own moving part in the URI.
        **({"counter": auth.counter} if auth.kind == Kind.HOTP else {"period": auth.period}),
    )


# Recovery codes ----------------------------------------------------------------------


def _recovery_digest(salt: str, canonical: str) -> str:
    return hashlib.sha256(f"{salt}:{canonical}".encode()).hexdigest()


def replace_recovery_codes(user: User) -> list[str]:
    """Replace the account's whole set (inside the caller's transaction); return the codes."""
    RecoveryCode.objects.filter(user=user).delete()
    codes = [otp.new_recovery_code() for _ in range(RECOVERY_CODES)]
    rows = []
    for code in codes:
        salt = secrets.token_hex(16)
        rows.append(RecoveryCode(user=user, salt=salt, digest=_recovery_digest(salt, code)))
    RecoveryCode.objects.bulk_create(rows)
    return codes


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def regenerate_recovery_codes(user: User, code: str, context: Context) -> list[str]:
    """Check a current code, then replace every recovery code; return the new ones."""
    check = _code_attempt(user, code, confirm=False)

    def attempt() -> list[str]:
        check()
        codes = replace_recovery_codes(user)
        record(user, EventKind.RECOVERY_REGENERATED, context)
        notices.queue(user, NoticeKind.RECOVERY_REGENERATED, context)
        return codes

    return _attempt(user, context, Factor.CODE, attempt)


def use_recovery_code(
    user: User, text: str, context: Context, *, event: Event | None = None
) -> int:
    """Consume one recovery code instead of an authentication code; return how many remain.

    ``event`` is recorded in the transaction that consumed the code.

    Raises :class:`InvalidCode` for a code that is not the account's (or is malformed),
    :class:`CodeReused` for one already used, :class:`Throttled` while the account waits,
    :class:`NotEnrolled` without 2FA.
    """

    def attempt() -> int:
        if not has_2fa(user):
            raise NotEnrolled()
        canonical = otp.normalize_recovery_code(text)
        for row in RecoveryCode.objects.filter(user=user):
            if hmac.compare_digest(_recovery_digest(row.salt, canonical), row.digest):
                unused = RecoveryCode.objects.filter(pk=row.pk, used_at__isnull=True)
                if not consume(unused, used_at=clock.now()):
                    raise CodeReused("this recovery code was already used")
                remaining = recovery_codes_left(user)
                record(user, EventKind.RECOVERY_USED, context, remaining=remaining)
                notices.queue(user, NoticeKind.RECOVERY_USED, context, remaining=remaining)
                return remaining
        raise InvalidCode("not a recovery code of this account")

    return _attempt(user, context, Factor.RECOVERY, attempt, event)


# Trusted browsers --------------------------------------------------------------------


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def trust_browser(user: User, context: Context) -> str:
    """Trust this browser for the configured days; return the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    label = describe(context.user_agent)
    with transaction.atomic():
        TrustedBrowser.objects.create(
            user=user,
            digest=_token_digest(token),
            label=label,
            address=context.address,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(days=app_settings.trust_days),
        )
        record(user, EventKind.TRUSTED_ADDED, context, browser=label)
        notices.queue(user, NoticeKind.TRUSTED_BROWSER, context, browser=label)
    return token


def use_trusted_browser(user: User, token: str, context: Context) -> str | None:
    """After a right password: if ``token`` trusts this browser for ``user``, replace it.

    Returns the new token (the old one stops working at once), or None when the token is
    unknown, revoked, expired, another account's, or was just used by someone else.
    """
    if not token or len(token) > 100:
        return None
    now = clock.now()
    old = _token_digest(token)
    row = TrustedBrowser.objects.filter(
        user=user, digest=old, revoked_at__isnull=True, expires_at__gt=now
    ).first()
    if row is None:
        return None
    new = secrets.token_urlsafe(32)
    unused = TrustedBrowser.objects.filter(pk=row.pk, digest=old, revoked_at__isnull=True)
    swapped = consume(unused, digest=_token_digest(new), last_used_at=now, address=context.address)
    return new if swapped else None


def trusted_browsers(user: User) -> list[TrustedBrowser]:
    return list(
        TrustedBrowser.objects.filter(
            user=user, revoked_at__isnull=True, expires_at__gt=clock.now()
        )
    )


def revoke_on_credentials_change(user: User, **_kwargs: Any) -> None:
    """A new password or address must not be skipped by a browser trusted under the old
    one (receiver of accounts' ``credentials_changed``, in the change's transaction)."""
    TrustedBrowser.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=clock.now())


def revoke_trusted_browsers(user: User, context: Context, pk: int | None = None) -> int:
    """Revoke one trusted browser (``pk``) or all of them; return how many."""
    with transaction.atomic():
        rows = TrustedBrowser.objects.filter(user=user, revoked_at__isnull=True)
        if pk is not None:
            rows = rows.filter(pk=pk)
        count = rows.update(revoked_at=clock.now())
        if count:
            record(user, EventKind.TRUSTED_REVOKED, context, count=count)
    return count
