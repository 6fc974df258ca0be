"""The identity checks: a phone call, identity documents, a code e-mailed and read back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction

from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock, mailedcodes
from keyfob.support.app_settings import app_settings
from keyfob.support.flows.errors import (
    CodeAlreadyUsed,
    CodeBurnt,
    CodeExpired,
    DocumentAlreadyVerified,
    DocumentNotRequired,
    NoCode,
    SupportError,
    WrongCode,
    WrongPurpose,
)
from keyfob.support.flows.state import (
    customer_context,
    hand_off,
    load_request,
    log_step,
    move,
    not_own,
)
from keyfob.support.models import (
    CallOutcome,
    DocumentCheck,
    DocumentKind,
    EmailCheck,
    Request,
    State,
    Step,
)

CODE_DIGITS = 8


def record_call(
    request_id: int, staff: User, outcome: str, note: str, context: Context, *, site: str = ""
) -> Request:
    """Record the outcome of the call to the profile's phone number.

    Confirmed: approved (and handed off: :func:`hand_off`, its link starting with ``site``).
    No answer: on to documents and the e-mailed code. Denied: rejected, and the customer is
    told. Raises :class:`WrongState`, :class:`OwnAccount`.
    """
    outcome = CallOutcome(outcome)
    to = {
        CallOutcome.CONFIRMED: State.APPROVED,
        CallOutcome.NO_ANSWER: State.WAITING,
        CallOutcome.DENIED: State.REJECTED,
    }[outcome]
    with transaction.atomic():
        req = load_request(request_id)
        not_own(req, staff)
        move(req, "call", to, call_outcome=outcome)
        log_step(
            req,
            Step.CALL,
            staff,
            context,
            EventKind.SUPPORT_CALL,
            staff_only={"note": note},
            outcome=str(outcome),
        )
        if to == State.APPROVED:
            log_step(req, Step.APPROVED, staff, context, EventKind.SUPPORT_APPROVED, by="call")
            hand_off(req, site)
        elif to == State.REJECTED:
            log_step(req, Step.REJECTED, staff, context, EventKind.SUPPORT_REJECTED)
            if not req.is_email_change:  # a change of address's refusal is its progress notice
                notices.queue(
                    req.user, NoticeKind.SUPPORT_REJECTED, customer_context(), by="support"
                )
    return req


def _approve_if_complete(req: Request, staff: User, context: Context, site: str) -> bool:
    """In a step's transaction: approve a waiting request whose documents and code are done."""
    verified = set(DocumentCheck.objects.filter(request=req).values_list("kind", flat=True))
    if not set(req.required_documents()) <= verified:
        return False
    # A change of address e-mails no code: the old mailbox is what was lost, and the new one
    # was proved by the code the customer typed back before the request opened.
    if (
        not req.is_email_change
        and not EmailCheck.objects.filter(request=req, used_at__isnull=False).exists()
    ):
        return False
    move(req, "approve")
    log_step(req, Step.APPROVED, staff, context, EventKind.SUPPORT_APPROVED, by="documents")
    hand_off(req, site)
    return True


def verify_document(
    request_id: int, staff: User, kind: str, note: str, context: Context, *, site: str = ""
) -> Request:
    """Mark a document received from the profile's address (for a change of address, from
    the request's new, confirmed address) and verified.

    Raises :class:`WrongState` (only while waiting for the customer),
    :class:`DocumentNotRequired`, :class:`DocumentAlreadyVerified`, :class:`OwnAccount`.
    """
    with transaction.atomic():
        req = load_request(request_id)
        not_own(req, staff)
        if kind not in req.required_documents():
            raise DocumentNotRequired(kind)
        move(req, "verify a document")
        try:
            with transaction.atomic():
                DocumentCheck.objects.create(
                    request=req,
                    kind=DocumentKind(kind),
                    verified_by=staff,
                    received_from=req.documents_from(),
                    note=note,
                )
        except IntegrityError:
            raise DocumentAlreadyVerified(kind) from None
        log_step(
            req,
            Step.DOCUMENT,
            staff,
            context,
            EventKind.SUPPORT_DOCUMENT,
            staff_only={"note": note},
            document=kind,
        )
        _approve_if_complete(req, staff, context, site)
    return req


CODES = mailedcodes.CodeKind(
    purpose="keyfob.support.email-check",
    seal="support-code",
    digits=CODE_DIGITS,
    drop_seal=notices.drop_seal,
)


def send_code(request_id: int, staff: User, context: Context) -> EmailCheck:
    """E-mail a new random code to the profile's address; any earlier code stops working.

    The code exists in clear only in the e-mail: the row keeps its keyed hash, and the
    outbox keeps it encrypted under the key ring until it is sent and spent.
    Raises :class:`WrongState` (only while waiting for the customer), :class:`OwnAccount`.
    """
    now = clock.now()
    with transaction.atomic():
        req = load_request(request_id)
        not_own(req, staff)
        if req.is_email_change:
            # Mail goes only to addresses the account holds, and its one is what was lost.
            raise WrongPurpose("a change of address e-mails no code")
        move(req, "send a code")
        check: EmailCheck = mailedcodes.start(
            CODES,
            EmailCheck.objects.filter(request=req, burnt_at=None),
            lifetime=timedelta(hours=app_settings.code_hours),
            retire={"burnt_at": now},
            queue=lambda sealed, nonce: notices.queue(
                req.user,
                NoticeKind.SUPPORT_CODE,
                customer_context(),
                request=req.pk,
                nonce=nonce,
                sealed=sealed,
                hours=app_settings.code_hours,
                by="support",
            ),
            request=req,
            sent_by=staff,
            sent_to=req.user.email,
            created_at=now,
        )
        log_step(req, Step.CODE_SENT, staff, context, EventKind.SUPPORT_CODE_SENT)
    return check


def unseal_code(params: dict[str, Any]) -> str:
    """The code a SUPPORT_CODE notice carries, for its e-mail; '' once it is spent."""
    # Notices queued before the one life cycle name the check's id instead of a nonce.
    nonce = params["nonce"] if "nonce" in params else int(params["check"])
    return notices.unseal(params, CODES.seal_context(str(nonce)))


def check_code(
    request_id: int, staff: User, code: str, context: Context, *, site: str = ""
) -> bool:
    """Check the code the customer read back; return whether the request is now approved.

    A wrong code counts (committed before the error is raised); the last allowed wrong try
    burns the code. Raises :class:`WrongCode`, :class:`CodeBurnt`, :class:`CodeExpired`,
    :class:`CodeAlreadyUsed`, :class:`NoCode`, :class:`WrongState`, :class:`OwnAccount`.
    """
    failure: SupportError
    with transaction.atomic():
        req = load_request(request_id)
        not_own(req, staff)
        move(req, "check a code")
        check = EmailCheck.objects.filter(request=req).first()
        now = clock.now()
        if check is None:
            raise NoCode("no code sent")
        if check.used_at is not None:
            raise CodeAlreadyUsed("already read back")
        if check.burnt_at is not None:
            raise CodeBurnt("burnt")
        if check.expires_at <= now:
            raise CodeExpired("expired")
        tries = app_settings.code_tries
        live = CODES.live(EmailCheck.objects.filter(pk=check.pk, burnt_at=None), tries)
        checked = mailedcodes.check(CODES, live, check, code, tries=tries)
        if checked.used:
            log_step(req, Step.CODE_OK, staff, context, EventKind.SUPPORT_CODE_OK)
            return _approve_if_complete(req, staff, context, site)
        if checked.right:
            raise CodeBurnt("spent meanwhile")
        left = checked.left
        log_step(req, Step.CODE_WRONG, staff, context, EventKind.SUPPORT_CODE_WRONG, left=left)
        if left == 0:
            EmailCheck.objects.filter(pk=check.pk, burnt_at=None).update(burnt_at=now)
            log_step(req, Step.CODE_BURNT, staff, context, None)
            failure = CodeBurnt("too many wrong tries")
        else:
            failure = WrongCode(left)
    raise failure
