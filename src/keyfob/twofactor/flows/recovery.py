"""Recovery codes: ten, stored as salted hashes, each used once instead of a code."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.http import HttpRequest

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.accounts.proofs import require_recent_auth
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock
from keyfob.core.consume import consume
from keyfob.otp import CodeReused, InvalidCode
from keyfob.twofactor.flows.verify import (
    Event,
    Factor,
    NotEnrolled,
    has_2fa,
    throttled_attempt,
)
from keyfob.twofactor.models import RecoveryCode

RECOVERY_CODES = 10
# At this many unused recovery codes or fewer, the Security page and each sign-in ask for a
# new set.
RECOVERY_LOW = 2


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


def regenerate_recovery_codes(request: HttpRequest, user: User, context: Context) -> list[str]:
    """Replace every recovery code; return the new ones. The session of ``request`` has
    just confirmed the password and a second factor ("Confirm it is you"): no code is asked
    again. Raises ``ReauthRequired`` without that confirmation, :class:`NotEnrolled`
    without 2FA."""
    require_recent_auth(request)
    with transaction.atomic():
        if not has_2fa(user):
            raise NotEnrolled()
        codes = replace_recovery_codes(user)
        record(user, EventKind.RECOVERY_REGENERATED, context)
        notices.queue(user, NoticeKind.RECOVERY_REGENERATED, context)
    return codes


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

    return throttled_attempt(user, context, Factor.RECOVERY, attempt, event)
