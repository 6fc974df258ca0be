"""Sign-in's password step, the pending marker between the two steps, and profile changes.

After a right password, an account with 2FA gets only a pending marker in its session
(DESIGN.md invariant 6): the user id and when the password was checked. The full session,
under a new session id, exists only once the second factor has been checked.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import (
    authenticate,
    login,
    password_validation,
    update_session_auth_hash,
)
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import translation

from keyfob.accounts import proofs
from keyfob.accounts.addresses import normal_email

# Named here too (flows.ResetLost…), as callers always have: explicit re-exports.
from keyfob.accounts.errors import AccountError as AccountError
from keyfob.accounts.errors import EmailChangeLimit as EmailChangeLimit
from keyfob.accounts.errors import EmailChangeLost as EmailChangeLost
from keyfob.accounts.errors import EmailTaken as EmailTaken
from keyfob.accounts.errors import InvalidCredentials as InvalidCredentials
from keyfob.accounts.errors import ReauthRequired as ReauthRequired
from keyfob.accounts.errors import ResetLost as ResetLost
from keyfob.accounts.errors import WrongEmailCode as WrongEmailCode
from keyfob.accounts.errors import WrongResetCode as WrongResetCode
from keyfob.accounts.models import EmailChange, Factor, PasswordReset, User
from keyfob.accounts.proofs import Made as Made
from keyfob.accounts.proofs import recent_auth as recent_auth
from keyfob.accounts.proofs import require_recent_auth as require_recent_auth
from keyfob.accounts.sessions import PENDING_KEY as PENDING_KEY
from keyfob.accounts.sessions import end_sessions as end_sessions
from keyfob.accounts.sessions import session_accounts as session_accounts
from keyfob.accounts.signals import credentials_changed
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock, mailedcodes, throttle
from keyfob.otp import KeyfobError, Throttled

BACKEND = "django.contrib.auth.backends.ModelBackend"


def _account_key(email: str) -> str:
    # Keyed by the address typed (in the normal form), known or not, so throttling reveals
    # nothing either.
    return hashlib.sha256(normal_email(email).encode()).hexdigest()


def check_password(request: HttpRequest, email: str, password: str) -> User:
    """Return the account for a right e-mail and password.

    Raises :class:`Throttled` when that e-mail or the client address has failed too often,
    and :class:`InvalidCredentials` otherwise; each failure is counted for both.
    """
    context = Context.from_request(request)
    failure: KeyfobError
    with transaction.atomic():
        # The address first: its row is the client's own, and only an attempt it lets
        # through makes a row for the e-mail typed. So one client cannot fill the table
        # with rows for made-up addresses faster than its own throttle allows (and
        # throttle.prune_idle deletes them after a quiet day).
        address = throttle.acquire(throttle.ADDRESS, context.address or "unknown")
        rows = [(throttle.ADDRESS, address)]
        wait = throttle.retry_after(throttle.ADDRESS, address)
        if wait <= 0:
            account = throttle.acquire(throttle.PASSWORD, _account_key(email))
            rows.append((throttle.PASSWORD, account))
            wait = throttle.retry_after(throttle.PASSWORD, account)
        if wait > 0:
            known = User.objects.with_email(email).first()
            if known is not None:
                record(known, EventKind.THROTTLED, context, factor="password")
            failure = Throttled(wait)
        else:
            # ModelBackend hashes the password even for an unknown e-mail: same time taken.
            user = authenticate(request, username=normal_email(email), password=password)
            if isinstance(user, User):
                # Only the account's count: the address's only decays, or one account of
                # one's own would clear a spraying counter every few guesses.
                throttle.reset(account)
                return user
            for policy, row in rows:
                throttle.record_failure(policy, row)
            known = User.objects.with_email(email).first()
            if known is not None:
                record(known, EventKind.PASSWORD_WRONG, context)
            failure = InvalidCredentials()
    raise failure


def begin_pending(request: HttpRequest, user: User, next_url: str) -> None:
    """Remember, and only remember, that ``user`` passed the password step just now.

    The marker is bound to the password in force (Django's session hash of it), so a
    password change ends every half-signed-in session too (DESIGN.md invariant 6).
    """
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "uid": user.pk,
        "at": clock.time(),
        "next": next_url,
        "auth": user.get_session_auth_hash(),
    }


def pending(request: HttpRequest, max_age: float) -> tuple[User, str] | None:
    """The account and ``next`` of a fresh pending sign-in, or None (absent or expired)."""
    marker: Any = request.session.get(PENDING_KEY)
    if not isinstance(marker, dict):
        return None
    if clock.time() - float(marker.get("at", 0)) > max_age:
        request.session.pop(PENDING_KEY, None)
        return None
    user = User.objects.filter(pk=marker.get("uid"), is_active=True).first()
    if user is None or not hmac.compare_digest(
        str(marker.get("auth", "")), user.get_session_auth_hash()
    ):
        request.session.pop(PENDING_KEY, None)
        return None
    return user, str(marker.get("next", ""))


def complete_signin(request: HttpRequest, user: User, made: list[Made], **detail: Any) -> None:
    """Create the full session (a new session id), record how it signed in (``made``: its
    proofs, the sign-in record of DESIGN.md invariant 8) and the sign-in event.

    A sign-in through a trusted browser is recorded as such (it proved no second factor).
    """
    request.session.pop(PENDING_KEY, None)
    trusted = any(m.factor == Factor.TRUSTED_BROWSER for m in made)
    kind = EventKind.SIGNIN_TRUSTED if trusted else EventKind.SIGNIN_OK
    with transaction.atomic():
        login(request, user, backend=BACKEND)
        proofs.start(request, user, made)
        record(user, kind, Context.from_request(request), **detail)


def mark_recent_auth(request: HttpRequest, made: list[Made]) -> None:
    """The holder of this signed-in session proved ``made`` just now ("Confirm it is you",
    a step-up): recorded with the session's sign-in."""
    proofs.add(request, made)


def change_password(request: HttpRequest, user: User, new_password: str) -> None:
    """Set a new password; raises :class:`ReauthRequired` without a recent confirmation."""
    require_recent_auth(request)
    context = Context.from_request(request)
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        credentials_changed.send(sender=User, user=user)
        record(user, EventKind.PASSWORD_CHANGED, context)
        notices.queue(user, NoticeKind.PASSWORD_CHANGED, context)
        # The old password proves nothing any more, in any session.
        proofs.factors_gone(user, [Factor.PASSWORD])
        # Keep this session signed in (under a new id); every other session of the account
        # ends (its hash of the password no longer matches).
        old_key = request.session.session_key
        update_session_auth_hash(request, user)
        proofs.rekeyed(request, old_key)


# A new sign-in address is confirmed with a code e-mailed to it (never a link: no secret
# in a URL); the change waits in an EmailChange row, with the keyed hash of its code.
EMAIL_CODE_DIGITS = 8
EMAIL_CODE_MINUTES = 30
EMAIL_CODE_TRIES = 5
# Confirmation mails an account may send in a day: each goes to an address of its choosing.
EMAIL_CODES_PER_DAY = 5


EMAIL_CODES = mailedcodes.CodeKind(
    purpose="keyfob.accounts.email-change",
    seal="email-confirm",
    digits=EMAIL_CODE_DIGITS,
    drop_seal=notices.drop_seal,
)


def unseal_email_code(params: dict[str, Any]) -> str:
    """The code an EMAIL_CONFIRM notice carries, for its e-mail; '' once it is spent."""
    return notices.unseal(params, EMAIL_CODES.seal_context(str(params["nonce"])))


def _live_email_change(user: User) -> QuerySet[EmailChange]:
    """The account's change still waiting: not used, not expired, tries left."""
    return EMAIL_CODES.live(EmailChange.objects.filter(user=user), EMAIL_CODE_TRIES)


def may_send_today(user: User, sent: EventKind, per_day: int) -> bool:
    """Whether ``user`` may send one more confirmation mail of the kind its ``sent`` event
    records: fewer than ``per_day`` in the last day. Locks the account's row first (call
    inside the transaction that sends it), so two requests at once cannot both pass."""
    User.objects.select_for_update().filter(pk=user.pk).first()
    since = clock.now() - timedelta(days=1)
    return SecurityEvent.objects.filter(user=user, kind=sent, at__gt=since).count() < per_day


def start_email_change(request: HttpRequest, user: User, new_email: str) -> None:
    """E-mail a code to ``new_email``; the address changes once it is typed back
    (:func:`confirm_email_change`). An earlier change waiting for its code is replaced.

    Whether another account has the address is not looked at here: the answer is the same
    either way, and only whoever reads that mailbox learns it, at the confirmation. Raises
    :class:`ReauthRequired` and :class:`EmailChangeLimit`, having sent nothing."""
    require_recent_auth(request)
    new_email = normal_email(new_email)
    context = Context.from_request(request)
    with transaction.atomic():
        if not may_send_today(user, EventKind.EMAIL_CODE_SENT, EMAIL_CODES_PER_DAY):
            raise EmailChangeLimit()
        mailedcodes.start(
            EMAIL_CODES,
            EmailChange.objects.all(),
            key={"user": user},
            lifetime=timedelta(minutes=EMAIL_CODE_MINUTES),
            queue=lambda sealed, nonce: notices.queue(
                user,
                NoticeKind.EMAIL_CONFIRM,
                context,
                to=new_email,
                new=new_email,
                nonce=nonce,
                minutes=EMAIL_CODE_MINUTES,
                sealed=sealed,
            ),
            email=new_email,
        )
        record(user, EventKind.EMAIL_CODE_SENT, context, new=new_email)


def pending_email_change(request: HttpRequest) -> str | None:
    """The new address waiting for its code, if any."""
    user = request.user
    change = _live_email_change(user).first() if isinstance(user, User) else None
    return None if change is None else change.email


def confirm_email_change(request: HttpRequest, user: User, code: str) -> str:
    """Change the address to the one waiting, if ``code`` is the one e-mailed to it; return
    the new address. Raises :class:`WrongEmailCode` (with the tries left),
    :class:`EmailChangeLost` (nothing waiting, expired, or the last try failed) or
    :class:`EmailTaken`. A wrong code is counted (committed) before the error is raised."""
    change = _live_email_change(user).first()
    if change is None:
        raise EmailChangeLost()
    live = _live_email_change(user).filter(pk=change.pk)
    failure: KeyfobError
    with transaction.atomic():
        checked = mailedcodes.check(EMAIL_CODES, live, change, code, tries=EMAIL_CODE_TRIES)
        if checked.used:
            if User.objects.with_email(change.email).exclude(pk=user.pk).exists():
                failure = EmailTaken()
            else:
                try:
                    with transaction.atomic():
                        change_email(request, user, change.email)
                except IntegrityError:  # another account took it a moment ago
                    failure = EmailTaken()
                else:
                    return change.email
        elif checked.right or checked.left == 0:
            failure = EmailChangeLost()  # used or spent meanwhile, or its last try
        else:
            failure = WrongEmailCode(checked.left)
    raise failure


def change_email(request: HttpRequest, user: User, new_email: str) -> None:
    """Change the sign-in address; both the old and the new address are told."""
    context = Context.from_request(request)
    old, new_email = user.email, normal_email(new_email)
    with transaction.atomic():
        user.email = new_email
        user.save(update_fields=["email"])
        credentials_changed.send(sender=User, user=user)
        record(user, EventKind.EMAIL_CHANGED, context)
        notices.queue(user, NoticeKind.EMAIL_CHANGED, context, to=old, old=old, new=new_email)
        notices.queue(user, NoticeKind.EMAIL_CHANGED, context, old=old, new=new_email)


# What support relies on to check who is calling: changed only after a recent
# confirmation, recorded with both values and told to the account holder.
GUARDED_PROFILE_FIELDS = ("phone", "kind")


def mask_phone(number: str) -> str:
    """A phone number as a notice shows it: "+33 6 •• •• •• 42" (enough to recognise it,
    not enough to call it). '' for no number."""
    if len(number) < 6:
        return "•" * len(number)
    hidden = len(number) - 6
    middle = " ".join("••" for _ in range(hidden // 2)) + (" •" if hidden % 2 else "")
    return f"{number[:3]} {number[3]} {middle.strip()} {number[-2:]}".replace("  ", " ")


def set_phone(request: HttpRequest, user: User, phone: str) -> None:
    """Record the phone number support calls when the authenticator is lost (a guarded
    field: see :func:`update_profile`)."""
    user.phone = phone
    update_profile(request, user, ["phone"])


def update_profile(request: HttpRequest, user: User, changed: list[str]) -> None:
    """Save the profile form's ``user``. A change of the phone number or the account kind
    raises :class:`ReauthRequired` (nothing saved) without a recent confirmation; with one,
    it is recorded (old and new number masked) and e-mailed to the account holder."""
    guarded = [name for name in changed if name in GUARDED_PROFILE_FIELDS]
    if guarded:
        require_recent_auth(request)
    if "language" in changed and user.language:
        # A language just chosen is the one to write to the account in from now on, this
        # save's own notice first (the page it was chosen on was still in the old one).
        user.last_language = user.language
    context = Context.from_request(request)
    with transaction.atomic():
        before = User.objects.select_for_update().filter(pk=user.pk).values(*GUARDED_PROFILE_FIELDS)
        old = before.get()
        user.save()
        if not changed:
            return
        detail: dict[str, Any] = {"fields": changed}
        if guarded:
            detail |= {
                "old_phone": mask_phone(old["phone"]),
                "new_phone": mask_phone(user.phone),
                "old_kind": old["kind"],
                "new_kind": user.kind,
            }
            notices.queue(user, NoticeKind.PROFILE_CHANGED, context, **detail)
        record(user, EventKind.PROFILE_CHANGED, context, **detail)


# "I forgot my password": a code e-mailed to the address typed and typed back with the new
# password (never a link: no secret in a URL). The request does the same work, and gives
# the same answer, whether an account uses the address or not: a PasswordReset row is
# written either way and a notice goes to the address either way (for an unknown address,
# one that says no account uses it), so neither the page nor its timing tells.
RESET_CODE_DIGITS = 8
RESET_CODE_MINUTES = 30
RESET_CODE_TRIES = 5


def _reset_throttle_key(email: str) -> str:
    # Its own count: asking for codes neither slows nor is slowed by wrong sign-in passwords.
    return "reset:" + _account_key(email)


RESET_CODES = mailedcodes.CodeKind(
    purpose="keyfob.accounts.password-reset",
    seal="password-reset",
    digits=RESET_CODE_DIGITS,
    drop_seal=notices.drop_seal,
)


def unseal_reset_code(params: dict[str, Any]) -> str:
    """The code a PASSWORD_RESET_CODE notice carries, for its e-mail; '' once it is spent."""
    return notices.unseal(params, RESET_CODES.seal_context(str(params["nonce"])))


def start_password_reset(request: HttpRequest, email: str) -> None:
    """E-mail a reset code to ``email`` if an account uses it (else a notice saying none
    does). Raises :class:`Throttled` when the address typed or the client address asked
    too often; every request counts, as a password failure does, so this cannot flood a
    mailbox."""
    email = normal_email(email)
    context = Context.from_request(request)
    language = translation.get_language() or ""
    with transaction.atomic():
        rows = [
            (throttle.PASSWORD, throttle.acquire(throttle.PASSWORD, _reset_throttle_key(email))),
            (throttle.ADDRESS, throttle.acquire(throttle.ADDRESS, context.address or "unknown")),
        ]
        wait = max(throttle.retry_after(policy, row) for policy, row in rows)
        if wait > 0:
            failure = Throttled(wait)
        else:
            for policy, row in rows:
                throttle.record_failure(policy, row)
            user = User.objects.with_email(email).filter(is_active=True).first()
            # Sealed either way (same work); an unknown address's notice never shows it, and
            # a code with no account behind it opens nothing. A code goes only to the
            # address stored on the account (DESIGN.md invariant 9), never to the one typed:
            # ``to`` is the typed address only for the "no account uses it" notice.
            mailedcodes.start(
                RESET_CODES,
                PasswordReset.objects.all(),
                key={"email_key": _account_key(email)},
                lifetime=timedelta(minutes=RESET_CODE_MINUTES),
                queue=lambda sealed, nonce: notices.queue(
                    user,
                    NoticeKind.PASSWORD_RESET_CODE,
                    context,
                    to=None if user is not None else email,
                    language=language,
                    known=user is not None,
                    nonce=nonce,
                    minutes=RESET_CODE_MINUTES,
                    sealed=sealed,
                ),
                user=user,
            )
            return
    raise failure


def _live_reset(email: str) -> QuerySet[PasswordReset]:
    return RESET_CODES.live(
        PasswordReset.objects.filter(email_key=_account_key(email)), RESET_CODE_TRIES
    )


def finish_password_reset(request: HttpRequest, email: str, code: str, password: str) -> User:
    """Set ``password`` on the account of ``email`` if ``code`` is the one e-mailed to it;
    return the account. Every session and trusted browser of the account ends and the
    holder is told; nobody is signed in (with 2FA, the next sign-in still asks for the
    code). Raises :class:`WrongResetCode` (with the tries left), :class:`ResetLost`, or
    Django's ValidationError when the password breaks a rule about the account. A
    wrong code is counted (committed) before the error is raised.
    """
    reset = _live_reset(email).first()
    if reset is None:
        raise ResetLost()
    live = _live_reset(email).filter(pk=reset.pk)
    context = Context.from_request(request)
    failure: KeyfobError
    with transaction.atomic():
        user = reset.user
        checked = mailedcodes.check(
            RESET_CODES,
            live,
            reset,
            code,
            tries=RESET_CODE_TRIES,
            usable=user is not None and user.is_active,
            # The rules that need the account (not like its name or address); a refusal
            # spends neither the code nor a try.
            before_use=lambda: password_validation.validate_password(password, user),
        )
        if checked.used and user is not None:
            user.set_password(password)
            # The page the person is on is in the language they read: the notice too.
            user.last_language = translation.get_language() or user.last_language
            user.save(update_fields=["password", "last_language"])
            # Trusted browsers go (twofactor listens); sessions end below.
            credentials_changed.send(sender=User, user=user)
            record(user, EventKind.PASSWORD_RESET, context)
            notices.queue(user, NoticeKind.PASSWORD_RESET, context)
            proofs.factors_gone(user, [Factor.PASSWORD])
            end_sessions(user)
            # Done: asking for a code later starts from a clean count again.
            throttle.reset(throttle.acquire(throttle.PASSWORD, _reset_throttle_key(email)))
            return user
        if checked.right or checked.left == 0:
            failure = ResetLost()  # used or spent meanwhile, or its last try
        else:
            failure = WrongResetCode(checked.left)
    raise failure


def prune_password_resets(now: datetime, **_kwargs: Any) -> tuple[str, int]:
    """Delete the password resets whose code expired before ``now`` (used, spent or not:
    a row per address typed, so they would pile up); a notice still waiting to be sent
    loses its sealed code first. Receiver of ``keyfob.audit.signals.pruning``."""
    with transaction.atomic():
        expired = PasswordReset.objects.filter(expires_at__lte=now)
        sealed = expired.filter(outbox__params__has_key=notices.SEALED)
        for outbox_id in sealed.values_list("outbox_id", flat=True):
            notices.drop_seal(outbox_id)
        deleted, _ = expired.delete()
    return "expired password resets", deleted
