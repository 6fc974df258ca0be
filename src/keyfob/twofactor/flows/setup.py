"""Turning 2FA on (a pending secret confirmed by a code) and off; adding authenticator apps
(2FA is on while at least one app or key is confirmed). Renaming and removing one:
``authenticators``."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from django.db import transaction
from django.http import HttpRequest

from keyfob import otp
from keyfob.accounts import proofs
from keyfob.accounts.models import User
from keyfob.accounts.proofs import require_recent_auth
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock
from keyfob.otp import KeyfobError
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.flows.recovery import replace_recovery_codes
from keyfob.twofactor.flows.verify import Factor, SetupExpired, code_check, throttled_attempt
from keyfob.twofactor.models import (
    Authenticator,
    Kind,
    RecoveryCode,
    SecurityKey,
    TrustedBrowser,
)


class By(StrEnum):
    """Who turned 2FA off: the account holder, or support after an identity check."""

    USER = "user"
    SUPPORT = "support"


# A code is matched against every app of the account, so each app adds its window of codes
# to what one guess can hit: the number of apps is capped, like the guesses (one throttle).
MAX_AUTHENTICATORS = 10


class TooManyAuthenticators(KeyfobError):
    """The account already has :data:`MAX_AUTHENTICATORS` authenticator apps."""

    code = "too_many_authenticators"


def start_setup(user: User, kind: str = Kind.TOTP, name: str = "") -> Authenticator:
    """Return the account's pending authenticator of ``kind``, making a new secret if needed.

    With 2FA on this adds one more app (a new phone, say) without turning 2FA off; the
    confirmed ones are untouched. An account has at most one pending at a time. Raises
    :class:`TooManyAuthenticators` when it has :data:`MAX_AUTHENTICATORS` confirmed.
    """
    with transaction.atomic():
        confirmed = Authenticator.objects.filter(user=user, confirmed_at__isnull=False)
        if confirmed.count() >= MAX_AUTHENTICATORS:
            raise TooManyAuthenticators(f"at most {MAX_AUTHENTICATORS} authenticator apps")
        existing = Authenticator.objects.filter(user=user, confirmed_at__isnull=True).first()
        if existing is not None and existing.kind == kind and not setup_expired(existing):
            if name and existing.name != name:
                existing.name = name
                existing.save(update_fields=["name"])
            return existing
        if existing is not None:
            existing.delete()
        auth = Authenticator(user=user, kind=kind, name=name)
        auth.set_secret(otp.random_secret(20))
        auth.save()
        return auth


def setup_expired(auth: Authenticator) -> bool:
    limit = timedelta(seconds=app_settings.pending_setup_seconds)
    return not auth.is_confirmed and clock.now() - auth.created_at > limit


def setup_seconds_left(auth: Authenticator) -> int:
    """Whole seconds before a pending key expires (0 once it has)."""
    limit = auth.created_at + timedelta(seconds=app_settings.pending_setup_seconds)
    return max(0, int((limit - clock.now()).total_seconds()))


def confirm_setup(request: HttpRequest, user: User, code: str, context: Context) -> list[str]:
    """Activate the pending authenticator with a code from the app.

    Returns the new recovery codes, to be shown once, when this is the account's first
    authenticator (2FA is turned on); an empty list when it is one more (the recovery codes
    stay). Raises ``ReauthRequired`` without a recent confirmation in the session of
    ``request``, :class:`SetupExpired` if the pending secret is older than the limit, and
    what :func:`verify_code` raises.
    """
    require_recent_auth(request)
    pending = Authenticator.objects.filter(user=user, confirmed_at__isnull=True).first()
    if pending is None or setup_expired(pending):
        raise SetupExpired()
    check = code_check(user, code, confirm=True, auths=[pending])

    def attempt() -> list[str]:
        auth = check()
        lock_account(user)
        return turned_on_or_added(
            user,
            context,
            name=auth.label,
            method=auth.kind,
            added=(EventKind.AUTHENTICATOR_ADDED, NoticeKind.AUTHENTICATOR_ADDED),
        )

    return throttled_attempt(user, context, Factor.CODE, attempt)


def lock_account(user: User) -> None:
    """Lock the account's row until the transaction ends (PostgreSQL; SQLite's IMMEDIATE
    transactions serialise writers anyway): authenticators added at once, of either kind,
    are then counted one after the other, so only one is the first and none passes a cap.
    (Locking the authenticator rows would not do: a row being inserted is not there.)"""
    User.objects.select_for_update().filter(pk=user.pk).first()


def turned_on_or_added(
    user: User,
    context: Context,
    *,
    name: str,
    method: str,
    added: tuple[EventKind, NoticeKind],
    **detail: object,
) -> list[str]:
    """After an authenticator (app or key, named ``name``) is confirmed, under
    :func:`lock_account`: if it is the account's only one, 2FA is on: new recovery codes
    (returned, to be shown once), recorded and notified. Else it is one more (``added``'s
    event, with ``detail``, and notice) and the recovery codes stay: an empty list."""
    apps = Authenticator.objects.filter(user=user, confirmed_at__isnull=False).count()
    if apps + SecurityKey.objects.filter(user=user).count() > 1:
        event, notice = added
        record(user, event, context, name=name, **detail)
        notices.queue(user, notice, context, name=name)
        return []
    codes = replace_recovery_codes(user)
    record(user, EventKind.TWOFACTOR_ON, context, method=method, name=name)
    notices.queue(user, NoticeKind.TWOFACTOR_ON, context, method=method)
    return codes


def disable(request: HttpRequest, user: User, context: Context) -> None:
    """The account holder turns 2FA off: authenticator apps, security keys, recovery codes
    and trusted browsers all go. Raises ``ReauthRequired`` without a recent confirmation."""
    require_recent_auth(request)
    _disable(user, context, By.USER)


def disable_by_support(user: User, context: Context) -> None:
    """Support turns the customer's 2FA off, after its own identity check (the customer has
    no session here): as :func:`disable`."""
    _disable(user, context, By.SUPPORT)


def _disable(user: User, context: Context, by: By) -> None:
    with transaction.atomic():
        deleted, _ = Authenticator.objects.filter(user=user).delete()
        keys, _ = SecurityKey.objects.filter(user=user).delete()
        deleted += keys
        RecoveryCode.objects.filter(user=user).delete()
        TrustedBrowser.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        # What the authenticators proved dies with them, in every session (the staff rule).
        proofs.factors_gone(user, proofs.SECOND_FACTORS)
        if deleted:
            record(user, EventKind.TWOFACTOR_OFF, context, by=by)
            notices.queue(user, NoticeKind.TWOFACTOR_OFF, context, by=by)


def turned_off_by_support(user: User) -> bool:
    """Whether 2FA is off because support turned it off (and was not turned on since): the
    customer is then invited, at each sign-in, to turn it on again."""
    last = (
        SecurityEvent.objects.filter(
            user=user, kind__in=[EventKind.TWOFACTOR_ON, EventKind.TWOFACTOR_OFF]
        )
        .only("kind", "detail")
        .first()
    )
    return (
        last is not None
        and last.kind == EventKind.TWOFACTOR_OFF
        and last.detail.get("by") == By.SUPPORT
    )


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
