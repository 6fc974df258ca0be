"""A staff member's first security key needs an enrolment code from an operator.

Under the staff rule (``KEYFOB_STAFF_PHISHING_RESISTANT``) a key is what opens the staff
pages. Adding a key needs the password and a second factor from the last minutes, but for a
staff member without a key that second factor is a code, which a phishing page relays: its
owner could add a key of their own and pass the rule from then on. So the first key of a
staff member also needs a one-time code that an operator issued for that account
(``keyfob staff-key-invite EMAIL``) and handed over out of band (in person, or read out on a
call to a number the operator knows): a phishing page has no way to get it. Later keys are
added after "Confirm it is you" with a key (``only_keys_confirm``), which a phishing page
cannot relay either.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.db import transaction

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.core import clock
from keyfob.core.consume import consume
from keyfob.otp import KeyfobError
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.flows.setup import lock_account
from keyfob.twofactor.models import SecurityKey, StaffKeyInvite

# How long an enrolment code works: long enough to hand it over and add the key while the
# operator is on the line, short enough that one written down and forgotten is soon dead.
STAFF_INVITE_MINUTES = 60


class StaffInviteRequired(KeyfobError):
    """Adding this staff member's first key needs a live enrolment code issued for them: none
    was given, or it is wrong, used, expired or another account's."""

    code = "staff_invite"


class InviteRefused(KeyfobError):
    """An enrolment code cannot be issued for this account (unknown, not staff, already
    holds a key, or the staff rule is off)."""

    code = "invite_refused"


def _digest(canonical: str) -> str:
    return hashlib.sha256(f"staff-key-invite:{canonical}".encode()).hexdigest()


def needs_staff_invite(user: User) -> bool:
    """Whether adding a key to ``user`` needs an enrolment code: a staff member, under the
    staff rule, without a key yet."""
    return (
        app_settings.staff_phishing_resistant
        and user.is_staff
        and not SecurityKey.objects.filter(user=user).exists()
    )


def issue_staff_key_invite(email: str, context: Context) -> tuple[User, str, datetime]:
    """Make a new enrolment code for the staff account ``email`` (an earlier unused one
    stops working); return the account, the code (shown once, stored hashed) and when it
    expires. Recorded in the account's activity. Raises :class:`InviteRefused`."""
    user = User.objects.with_email(email).first()
    if user is None:
        raise InviteRefused(f"no account with the e-mail {email}")
    if not user.is_staff:
        raise InviteRefused(f"{user.email} is not staff")
    if not app_settings.staff_phishing_resistant:
        raise InviteRefused("KEYFOB_STAFF_PHISHING_RESISTANT is off: no enrolment code is needed")
    code = otp.new_recovery_code()
    now = clock.now()
    expires = now + timedelta(minutes=STAFF_INVITE_MINUTES)
    with transaction.atomic():
        lock_account(user)  # as adding a key does: the key check below stays true
        if SecurityKey.objects.filter(user=user).exists():
            raise InviteRefused(
                f"{user.email} has a security key already: further keys are added after "
                "confirming with it"
            )
        StaffKeyInvite.objects.filter(user=user, used_at__isnull=True).delete()
        StaffKeyInvite.objects.create(
            user=user, digest=_digest(code), created_at=now, expires_at=expires
        )
        record(user, EventKind.STAFF_KEY_INVITE, context, minutes=STAFF_INVITE_MINUTES)
    return user, code, expires


def spend_staff_invite(user: User, text: str) -> None:
    """Use up ``user``'s enrolment code ``text`` (inside the caller's transaction, which
    adds the key: undone with it). Raises :class:`StaffInviteRequired`."""
    try:
        canonical = otp.normalize_recovery_code(text)
    except otp.InvalidCode:
        raise StaffInviteRequired("not an enrolment code") from None
    now = clock.now()
    live = StaffKeyInvite.objects.filter(
        user=user, digest=_digest(canonical), used_at__isnull=True, expires_at__gt=now
    )
    if not consume(live, used_at=now):
        raise StaffInviteRequired("no live enrolment code of this account")
