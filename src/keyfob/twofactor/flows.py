"""What happens when a code is entered: verify, consume once, throttle, record.

Every function here runs its writes in one transaction, and failures are committed before
the exception that reports them is raised, so a refused attempt still counts.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from keyfob import clock, otp
from keyfob.accounts import throttle
from keyfob.accounts.models import User
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.models import Authenticator, Kind


class NotEnrolled(KeyfobError):
    """The account has no confirmed authenticator."""


class SetupExpired(KeyfobError):
    """The pending secret was not confirmed in time; a new one must be made."""


class ClockDrift(InvalidCode):
    """The code is right for a time far from now: the device's clock is off."""

    def __init__(self, steps: int, period: int) -> None:
        super().__init__("the device's clock is off")
        self.seconds = steps * period


def confirmed_authenticator(user: User) -> Authenticator | None:
    return Authenticator.objects.filter(user=user, confirmed_at__isnull=False).first()


def has_2fa(user: User) -> bool:
    return Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()


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


def _drift(auth: Authenticator, code: str, at: float) -> int | None:
    if auth.kind != Kind.TOTP:
        return None
    return otp.drift_steps(
        auth.secret(),
        code,
        at,
        max_steps=app_settings.drift_max_steps,
        period=auth.period,
        digits=auth.digits,
        algorithm=auth.algorithm,
    )


def _consume(auth: Authenticator, matched: int, *, confirm: bool) -> bool:
    """Compare-and-set: move the step/counter past ``matched`` unless someone already did."""
    rows = Authenticator.objects.filter(pk=auth.pk)
    if auth.kind == Kind.HOTP:
        rows = rows.filter(counter__lte=matched)
        changes: dict[str, object] = {"counter": matched + 1}
    else:
        rows = rows.filter(last_step__lt=matched)
        changes = {"last_step": matched}
    if confirm:
        rows = rows.filter(confirmed_at__isnull=True)
        changes["confirmed_at"] = clock.now()
    return rows.update(**changes) == 1


def _check(user: User, code: str, context: Context, *, confirm: bool) -> int:
    """Shared by sign-in and setup: see :func:`verify_code`."""
    at = clock.time()
    failure: KeyfobError
    with transaction.atomic():
        row = throttle.acquire(throttle.CODE, str(user.pk))
        try:
            throttle.check(throttle.CODE, row)
        except Throttled as exc:
            record(user, EventKind.THROTTLED, context, factor="code")
            failure = exc
        else:
            auth = Authenticator.objects.filter(user=user, confirmed_at__isnull=confirm).first()
            if auth is None:
                raise SetupExpired() if confirm else NotEnrolled()
            matched = _match(auth, code, at)
            if matched is not None and _consume(auth, matched, confirm=confirm):
                throttle.reset(row)
                if confirm:
                    record(user, EventKind.TWOFACTOR_ON, context, method=auth.kind)
                return matched
            throttle.record_failure(throttle.CODE, row)
            if matched is not None:
                record(user, EventKind.CODE_REUSED, context)
                failure = CodeReused("this code was already used")
            else:
                record(user, EventKind.CODE_WRONG, context)
                drift = _drift(auth, code, at)
                failure = ClockDrift(drift, auth.period) if drift else InvalidCode("wrong code")
    raise failure


def verify_code(user: User, code: str, context: Context) -> int:
    """Check a sign-in code against the account's authenticator and consume it.

    Returns the matched step (or counter). Raises :class:`Throttled` (even for a right
    code while the account is throttled), :class:`CodeReused`, :class:`ClockDrift`,
    :class:`InvalidCode`, or :class:`NotEnrolled`.
    """
    return _check(user, code, context, confirm=False)


def start_setup(user: User) -> Authenticator:
    """Return the account's pending authenticator, making a new secret if none is fresh.

    Raises :class:`KeyfobError` if 2FA is already on: it must be turned off first.
    """
    with transaction.atomic():
        existing = Authenticator.objects.filter(user=user).first()
        if existing is not None and existing.is_confirmed:
            raise KeyfobError("two-factor authentication is already on")
        if existing is not None and not setup_expired(existing):
            return existing
        if existing is not None:
            existing.delete()
        auth = Authenticator(user=user, kind=Kind.TOTP)
        auth.set_secret(otp.random_secret(20))
        auth.save()
        return auth


def setup_expired(auth: Authenticator) -> bool:
    limit = timedelta(seconds=app_settings.pending_setup_seconds)
    return not auth.is_confirmed and clock.now() - auth.created_at > limit


def confirm_setup(user: User, code: str, context: Context) -> int:
    """Activate the pending authenticator with a code from the app.

    Raises :class:`SetupExpired` if the pending secret is older than the limit, and the
    same errors as :func:`verify_code` for the code.
    """
    pending = Authenticator.objects.filter(user=user, confirmed_at__isnull=True).first()
    if pending is None or setup_expired(pending):
        raise SetupExpired()
    return _check(user, code, context, confirm=True)


def disable(user: User, context: Context) -> None:
    """Turn 2FA off (the caller has checked the password and a current code)."""
    with transaction.atomic():
        deleted, _ = Authenticator.objects.filter(user=user).delete()
        if deleted:
            record(user, EventKind.TWOFACTOR_OFF, context, by="user")


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
