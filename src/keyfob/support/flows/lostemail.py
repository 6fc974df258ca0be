""" "I no longer have access to my e-mail address": the customer's request, confirmed by a
code sent to the new address, and support's change of the sign-in address at its end.

The journey:

1. :func:`start_claim` (signed out, from "Can't sign in?"): the account's address or the
   profile's phone number, the new address, what else was lost. A code goes to the new
   address; a :class:`LostEmailClaim` waits for it. The same row, the same notice and the
   same throttle counts are written whether an account matches or not.
2. :func:`confirm_claim`: the code typed back. For a known account, a request opens (purpose
   EMAIL) with the new address as a confirmed address *of the request*; the account's own
   address is told (it may still be read by the real holder, who can cancel). Either way the
   new address is told what happens next.
3. The desk's identity check, as for 2FA (:mod:`keyfob.support.flows.checks`): the call to
   the profile's number; failing that, the documents the account's kind requires, received
   from the new, confirmed address (no code is e-mailed: the old mailbox is the thing lost,
   and the new one was proved at step 2).
4. :func:`change_address` (another staff member, four eyes): the sign-in address becomes the
   new one; 2FA goes too if the authenticator was lost; sessions and trusted browsers end;
   both addresses are told. The password is never set by support.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.flows import end_sessions
from keyfob.accounts.models import User
from keyfob.accounts.signals import credentials_changed
from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock, mailedcodes, throttle
from keyfob.otp import KeyfobError, Throttled
from keyfob.support.app_settings import app_settings
from keyfob.support.flows.errors import AddressTaken, FourEyes, WrongPurpose
from keyfob.support.flows.state import (
    customer_context,
    load_request,
    log_step,
    may_disable,
    move,
    not_own,
)
from keyfob.support.models import (
    ACTIVE_STATES,
    Channel,
    LostEmailClaim,
    Purpose,
    Request,
    State,
    Step,
)
from keyfob.twofactor import flows as twofactor

CLAIM_CODE_DIGITS = 8
CLAIM_CODE_MINUTES = 30
CLAIM_CODE_TRIES = 5

CLAIM_CODES = mailedcodes.CodeKind(
    purpose="keyfob.support.lost-email",
    seal="lost-email",
    digits=CLAIM_CODE_DIGITS,
    drop_seal=notices.drop_seal,
)


class ClaimLost(KeyfobError):
    """No request waiting for this code: none, expired, used, or too many wrong codes."""

    code = "claim_lost"


class WrongClaimCode(KeyfobError):
    code = "wrong_claim_code"

    def __init__(self, left: int) -> None:
        super().__init__("wrong code")
        self.left = left


def unseal_claim_code(params: dict[str, Any]) -> str:
    """The code a LOST_EMAIL_CODE notice carries, for its e-mail; '' once it is spent."""
    return notices.unseal(params, CLAIM_CODES.seal_context(str(params["nonce"])))


_PHONE_SEPARATORS = re.compile(r"[\s.\-()]", flags=re.ASCII)


def _identifier(typed: str) -> str:
    """What was typed to name the account, in one form: an address in Keyfob's normal form,
    a phone number without its separators."""
    if "@" in typed:
        return normal_email(typed)
    return _PHONE_SEPARATORS.sub("", typed.strip())


def find_account(typed: str) -> User | None:
    """The active account an address or a profile's phone number names, or None (none, or
    a phone number on several profiles: support could not tell whose)."""
    key = _identifier(typed)
    if "@" in key:
        return User.objects.with_email(key).filter(is_active=True).first()
    found = list(User.objects.filter(phone=key, is_active=True)[:2]) if key else []
    return found[0] if len(found) == 1 else None


def _throttle_key(kind: str, value: str) -> str:
    return f"lost-email:{kind}:" + hashlib.sha256(value.encode()).hexdigest()


def start_claim(
    context: Context, *, account: str, new_email: str, lost: str, language: str
) -> LostEmailClaim:
    """E-mail a code to ``new_email`` for a request to make it the sign-in address of the
    account ``account`` names (its address or its profile's phone number); return the row
    that waits for the code.

    Every request counts against the account typed, the new address and the client address
    (each like a wrong password), so this floods no mailbox and guesses nothing fast. Raises
    :class:`Throttled` (nothing sent). Nothing here depends on whether an account matched.
    """
    new_email = normal_email(new_email)
    with transaction.atomic():
        rows = [
            (throttle.ADDRESS, throttle.acquire(throttle.ADDRESS, context.address or "unknown")),
            (
                throttle.PASSWORD,
                throttle.acquire(throttle.PASSWORD, _throttle_key("account", _identifier(account))),
            ),
            (
                throttle.PASSWORD,
                throttle.acquire(throttle.PASSWORD, _throttle_key("new", new_email)),
            ),
        ]
        wait = max(throttle.retry_after(policy, row) for policy, row in rows)
        if wait > 0:
            raise Throttled(wait)
        for policy, row in rows:
            throttle.record_failure(policy, row)
        user = find_account(account)
        claim: LostEmailClaim = mailedcodes.start(
            CLAIM_CODES,
            LostEmailClaim.objects.filter(new_email=new_email),
            lifetime=timedelta(minutes=CLAIM_CODE_MINUTES),
            retire={"expires_at": clock.now()},
            # To the address typed, and to it only: the code proves that mailbox, and the
            # notice names no account (user None), for a known account or not.
            queue=lambda sealed, nonce: notices.queue(
                None,
                NoticeKind.LOST_EMAIL_CODE,
                context,
                to=new_email,
                language=language,
                nonce=nonce,
                minutes=CLAIM_CODE_MINUTES,
                sealed=sealed,
            ),
            user=user,
            new_email=new_email,
            lost=lost,
            language=language,
        )
    return claim


def _live(claim_id: int) -> Any:
    return CLAIM_CODES.live(LostEmailClaim.objects.filter(pk=claim_id), CLAIM_CODE_TRIES)


def pending_claim(claim_id: Any) -> LostEmailClaim | None:
    """The claim still waiting for its code, or None."""
    if not isinstance(claim_id, int):
        return None
    claim: LostEmailClaim | None = _live(claim_id).first()
    return claim


def confirm_claim(claim_id: int, code: str, context: Context, *, site: str) -> None:
    """Check the code typed back. A right one (used once, even by two submissions at once)
    opens the request for a known account and tells the new address what happens next, the
    same words for a known account or not. Raises :class:`WrongClaimCode` (tries left) or
    :class:`ClaimLost`; a wrong code is counted (committed) before the error is raised."""
    claim = pending_claim(claim_id)
    if claim is None:
        raise ClaimLost()
    failure: KeyfobError
    with transaction.atomic():
        checked = mailedcodes.check(
            CLAIM_CODES, _live(claim.pk), claim, code, tries=CLAIM_CODE_TRIES
        )
        if checked.used:
            _open(claim, context, site=site)
            return
        failure = (
            ClaimLost() if checked.right or checked.left == 0 else WrongClaimCode(checked.left)
        )
    raise failure


def _open(claim: LostEmailClaim, context: Context, *, site: str) -> None:
    """In the confirming transaction: the request (known account) and the notices."""
    user = claim.user
    opened: Request | None = None
    if user is not None and user.is_active:
        opened = _open_request(user, claim, context, site=site)
    if opened is not None:
        LostEmailClaim.objects.filter(pk=claim.pk).update(request=opened)
    # The new address hears the same thing either way: nothing tells it whether an account
    # matched (support will, by calling the profile's number or asking for documents).
    notices.queue(
        None,
        NoticeKind.LOST_EMAIL_RECEIVED,
        context,
        to=claim.new_email,
        language=claim.language,
        lost=claim.lost,
        support_email=app_settings.support_email,
    )


def _open_request(
    user: User, claim: LostEmailClaim, context: Context, *, site: str
) -> Request | None:
    """Open the request (None if the account already has one in progress: the customer's
    answer is the same, and support sees the one in progress)."""
    if Request.objects.filter(user=user, state__in=ACTIVE_STATES).exists():
        return None
    now = clock.now()
    try:
        with transaction.atomic():
            req = Request.objects.create(
                user=user,
                channel=Channel.SIGNIN,
                purpose=Purpose.EMAIL,
                new_email=claim.new_email,
                new_email_confirmed_at=now,
                lost=claim.lost,
                account_kind=user.kind,
                created_at=now,
                updated_at=now,
            )
            log_step(
                req,
                Step.OPENED,
                None,
                context,
                EventKind.SUPPORT_OPENED,
                channel=str(Channel.SIGNIN),
                purpose=str(Purpose.EMAIL),
            )
            # To the account's own address (and its second one): if the real holder still
            # reads it, they see the request and can cancel it.
            notices.queue(
                user,
                NoticeKind.LOST_EMAIL_OPENED,
                context,
                request=req.pk,
                new=claim.new_email,
                lost=claim.lost,
                site=site,
                issued=int(clock.time()),
            )
    except IntegrityError:  # another request was opened at the same moment
        return None
    return req


def change_address(request_id: int, staff: User, reason: str, context: Context) -> Request:
    """Make the request's new, confirmed address the sign-in address, and complete it, in
    one transaction: 2FA goes too if the authenticator was lost; trusted browsers and every
    session end; the old and the new address are both told. The password is not touched.

    Raises :class:`WrongState` (only once approved), :class:`FourEyes`, :class:`OwnAccount`,
    :class:`AddressTaken` (another account has the address now: nothing changed).
    """
    with transaction.atomic():
        req = load_request(request_id)
        not_own(req, staff)
        if not req.is_email_change:
            raise WrongPurpose("not a change of address")
        if req.state == State.APPROVED and not may_disable(req, staff):
            raise FourEyes("another staff member must change the address")
        user = User.objects.select_for_update().get(pk=req.user_id)
        new = normal_email(req.new_email)
        if User.objects.with_email(new).exclude(pk=user.pk).exists():
            raise AddressTaken(new)
        move(req, "change the address", reason=reason)
        old = user.email
        user.email = new
        try:
            with transaction.atomic():
                user.save(update_fields=["email"])
        except IntegrityError:  # taken at this very moment
            raise AddressTaken(new) from None
        req.user = user
        # Trusted browsers go (twofactor listens), as on any change of the sign-in address.
        credentials_changed.send(sender=User, user=user)
        turned_off = False
        if req.lost_authenticator and twofactor.has_2fa(user):
            twofactor.disable_by_support(user, customer_context())
            turned_off = True
        sessions = end_sessions(user)
        log_step(
            req,
            Step.EMAIL_CHANGED,
            staff,
            context,
            EventKind.SUPPORT_EMAIL_CHANGED,
            staff_only={"reason": reason, "sessions_ended": sessions},
            old=old,
            new=new,
            twofactor_off=turned_off,
        )
        facts = {"old": old, "new": new, "twofactor_off": turned_off, "lost": req.lost}
        notices.queue(
            user,
            NoticeKind.EMAIL_CHANGED_BY_SUPPORT,
            customer_context(),
            to=old,
            by="support",
            **facts,
        )
        notices.queue(
            user, NoticeKind.EMAIL_CHANGED_BY_SUPPORT, customer_context(), by="support", **facts
        )
    return req


def prune_claims(now: datetime, **_kwargs: Any) -> tuple[str, int]:
    """Delete the lost-mailbox requests whose code expired before ``now`` (confirmed or not:
    a confirmed one lives on as its support request); a notice still waiting to be sent
    loses its sealed code first. Receiver of ``keyfob.audit.signals.pruning``."""
    with transaction.atomic():
        expired = LostEmailClaim.objects.filter(expires_at__lte=now)
        sealed = expired.filter(outbox__params__has_key=notices.SEALED)
        for outbox_id in sealed.values_list("outbox_id", flat=True):
            notices.drop_seal(outbox_id)
        deleted, _ = expired.delete()
    return "expired requests for a lost mailbox", deleted
