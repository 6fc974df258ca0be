"""The support desk's state machine: open, check identity, approve, disable, or stop.

::

    open ──call confirmed──────────────────────────────> approved ──disable──> completed
      │ └─call: no answer─> waiting ──documents + code──>  ↑
      │                       └──call confirmed────────────┘
      └─call denied (open or waiting) ──> rejected
    open / waiting / approved ──cancel──> cancelled

Every step starts with one compare-and-set ``UPDATE … WHERE id = ? AND state = ?`` on the
request (checking the row count), to the next state or to the same one. That statement also
takes the request's row lock, so the rest of the step runs as if alone: of two staff members
pressing "Disable" at once, exactly one moves the request, and the other is told it moved.
Each step writes a timeline row (:class:`RequestEvent`) and an event in the customer's
security activity in the same transaction; mails go to the outbox in it too.

Staff actions are recorded on the customer's side without the staff member's address or
browser: those are support's, not the customer's, and are kept on the timeline instead.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import F

from keyfob.accounts.flows import session_accounts
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import Channel as EventChannel
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock, keyring, mailedcodes
from keyfob.core.consume import consume
from keyfob.otp import KeyfobError
from keyfob.support.app_settings import app_settings
from keyfob.support.models import (
    ACTIVE_STATES,
    CallOutcome,
    Channel,
    DocumentCheck,
    DocumentKind,
    EmailCheck,
    Request,
    RequestEvent,
    State,
    Step,
)
from keyfob.twofactor import flows as twofactor

CODE_DIGITS = 8
# Steps that count as "recording a check", for the four-eyes rule.
CHECK_STEPS = (Step.CALL, Step.DOCUMENT, Step.CODE_SENT, Step.CODE_OK, Step.CODE_WRONG)
_CANCEL_SALT = "keyfob.support.cancel-link"


# Errors ------------------------------------------------------------------------------


class SupportError(KeyfobError):
    """A support step that cannot be done; nothing was changed."""

    code = "support_error"


class WrongState(SupportError):
    """The request is not (or no longer) in a state where this step can be done."""

    code = "wrong_state"

    def __init__(self, state: str, step: str) -> None:
        super().__init__(f"cannot {step} a request in state {state}")
        self.state = state
        self.step = step


class NotFound(SupportError):
    """No such request (or account)."""

    code = "not_found"


class OwnAccount(SupportError):
    """A staff member tried to act on a request for their own account."""

    code = "own_account"


class FourEyes(SupportError):
    """The staff member recorded checks on this request, so someone else must disable."""

    code = "four_eyes"


class NotEnrolled(SupportError):
    """The account does not use 2FA: there is nothing for support to turn off."""

    code = "not_enrolled"


class AlreadyActive(SupportError):
    """The account already has a request in progress."""

    code = "already_active"

    def __init__(self, request_id: int | None) -> None:
        super().__init__("the account already has a request in progress")
        self.request_id = request_id


class DocumentNotRequired(SupportError):
    """That document is not one asked for this kind of account."""

    code = "document_not_required"


class DocumentAlreadyVerified(SupportError):
    """That document was already marked verified on this request."""

    code = "document_already_verified"


class NoCode(SupportError):
    """No code was e-mailed for this request yet."""

    code = "no_code"


class CodeExpired(SupportError):
    """The last code e-mailed is older than its lifetime: send a new one."""

    code = "code_expired"


class CodeBurnt(SupportError):
    """The last code e-mailed took too many wrong tries (or was replaced): send a new one."""

    code = "code_burnt"


class CodeAlreadyUsed(SupportError):
    """The last code e-mailed was already read back correctly."""

    code = "code_already_used"


class WrongCode(SupportError):
    """Not the code e-mailed; ``left`` tries remain before it burns."""

    code = "wrong_code"

    def __init__(self, left: int) -> None:
        super().__init__("wrong code")
        self.left = left


class BadCancelLink(SupportError):
    """The cancel link is not one of ours, or too old."""

    code = "bad_cancel_link"


# Helpers -----------------------------------------------------------------------------


def _customer_context() -> Context:
    """The customer-side context of a staff step: the web, no address or browser of theirs."""
    return Context(channel=EventChannel.WEB)


def _load(request_id: int) -> Request:
    req = Request.objects.select_related("user").filter(pk=request_id).first()
    if req is None:
        raise NotFound("no such request")
    return req


def _not_own(req: Request, staff: User | None) -> None:
    if staff is not None and staff.pk == req.user_id:
        raise OwnAccount("staff never act on their own account")


# The support desk's state machine in one table: for each step, the states a request may
# be in for it, and the state it moves to (the first; a call moves to one of three, by its
# outcome). WrongState names the step, and the staff's page words the refusal by it.
TRANSITIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cancel": (ACTIVE_STATES, (State.CANCELLED,)),
    "call": ((State.OPEN, State.WAITING), (State.APPROVED, State.WAITING, State.REJECTED)),
    "approve": ((State.WAITING,), (State.APPROVED,)),
    "verify a document": ((State.WAITING,), (State.WAITING,)),
    "send a code": ((State.WAITING,), (State.WAITING,)),
    "check a code": ((State.WAITING,), (State.WAITING,)),
    "disable": ((State.APPROVED,), (State.COMPLETED,)),
}


def _move(req: Request, step: str, to: str | None = None, **changes: Any) -> None:
    """Compare-and-set the request from its current state along ``step`` of
    :data:`TRANSITIONS` (to ``to``, one of the step's targets, if given).

    Raises :class:`WrongState` if the state read is not one the step starts from, or if
    another transaction moved the request meanwhile (the UPDATE then matches no row).
    """
    allowed, targets = TRANSITIONS[step]
    to = targets[0] if to is None else to
    if to not in targets:
        raise ValueError(f"{step} never leads to {to}")
    if req.state not in allowed:
        raise WrongState(req.state, step)
    now = clock.now()
    moved = Request.objects.filter(pk=req.pk, state=req.state).update(
        state=to, updated_at=now, **changes
    )
    if moved != 1:
        current = Request.objects.filter(pk=req.pk).values_list("state", flat=True).first()
        raise WrongState(current or req.state, step)
    req.state = to
    req.updated_at = now
    for name, value in changes.items():
        setattr(req, name, value)


def _log(
    req: Request,
    step: Step,
    actor: User | None,
    context: Context,
    event: EventKind | None,
    *,
    staff_only: dict[str, Any] | None = None,
    **detail: Any,
) -> None:
    """One timeline row and one event in the customer's activity (same transaction).

    ``staff_only``: what goes on the timeline but not in the customer's activity (notes).
    """
    RequestEvent.objects.create(
        request=req,
        step=step,
        actor=actor,
        address=context.address,
        state=req.state,
        detail={**detail, **(staff_only or {})},
    )
    if event is None:
        return
    customer_context = context if actor is None else _customer_context()
    record(req.user, event, customer_context, request=req.pk, **detail)


def checkers(req: Request) -> set[int]:
    """The ids of the staff members who recorded a check on ``req``."""
    rows = RequestEvent.objects.filter(request=req, step__in=CHECK_STEPS, actor__isnull=False)
    return set(rows.values_list("actor_id", flat=True))


def may_disable(req: Request, staff: User) -> bool:
    """Whether the four-eyes rule lets ``staff`` disable (the state is not checked)."""
    return not app_settings.four_eyes or staff.pk not in checkers(req)


# Opening and cancelling --------------------------------------------------------------


def active_request(user: User) -> Request | None:
    return Request.objects.filter(user=user, state__in=ACTIVE_STATES).first()


def open_request(
    user: User,
    context: Context,
    *,
    site: str,
    channel: str = Channel.SIGNIN,
    staff: User | None = None,
    note: str = "",
) -> Request:
    """Open a request for ``user`` (by the customer, or by ``staff`` for them); return it.

    The customer is e-mailed that it was opened, with a link to cancel it; ``site`` is the
    origin (``https://host``) that link starts with. Raises :class:`NotEnrolled`,
    :class:`AlreadyActive` or :class:`OwnAccount`.
    """
    if staff is not None and staff.pk == user.pk:
        raise OwnAccount("staff never act on their own account")
    if not twofactor.has_2fa(user):
        raise NotEnrolled("two-factor authentication is not on")
    existing = active_request(user)
    if existing is not None:
        raise AlreadyActive(existing.pk)
    now = clock.now()
    try:
        with transaction.atomic():
            req = Request.objects.create(
                user=user,
                channel=Channel(channel),
                opened_by=staff,
                note=note,
                account_kind=user.kind,
                created_at=now,
                updated_at=now,
            )
            _log(
                req,
                Step.OPENED,
                staff,
                context,
                EventKind.SUPPORT_OPENED,
                staff_only={"note": note} if note else None,
                channel=str(channel),
            )
            notices.queue(
                user,
                NoticeKind.SUPPORT_OPENED,
                context if staff is None else _customer_context(),
                request=req.pk,
                by="user" if staff is None else "support",
                site=site,
                issued=int(clock.time()),
            )
    except IntegrityError:  # another request was opened at the same moment
        raise AlreadyActive(getattr(active_request(user), "pk", None)) from None
    return req


def cancel_link_path(request_id: int, issued: int) -> str:
    """The signed path of the link that cancels a request (nothing is stored for it)."""
    from django.urls import reverse

    value = signing.Signer(salt=_CANCEL_SALT).sign_object({"r": request_id, "t": issued})
    return reverse("support:cancel", args=[value])


def request_from_link(value: str) -> Request:
    """The request a cancel link names. Raises :class:`BadCancelLink` or :class:`NotFound`."""
    try:
        data = signing.Signer(salt=_CANCEL_SALT).unsign_object(value)
        request_id, issued = int(data["r"]), int(data["t"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadCancelLink("not a cancel link of ours") from None
    if clock.time() - issued > app_settings.cancel_link_days * 86400:
        raise BadCancelLink("this cancel link is too old")
    return _load(request_id)


def cancel(
    request_id: int, context: Context, *, staff: User | None = None, reason: str = ""
) -> Request:
    """Cancel a request in progress (the customer from the e-mailed link, or staff)."""
    with transaction.atomic():
        req = _load(request_id)
        _not_own(req, staff)
        _move(req, "cancel", reason=reason)
        _log(
            req,
            Step.CANCELLED,
            staff,
            context,
            EventKind.SUPPORT_CANCELLED,
            staff_only={"reason": reason} if reason else None,
        )
    return req


# The checks --------------------------------------------------------------------------


def record_call(request_id: int, staff: User, outcome: str, note: str, context: Context) -> Request:
    """Record the outcome of the call to the profile's phone number.

    Confirmed: approved. No answer: on to documents and the e-mailed code. Denied: rejected,
    and the customer is told. Raises :class:`WrongState`, :class:`OwnAccount`.
    """
    outcome = CallOutcome(outcome)
    to = {
        CallOutcome.CONFIRMED: State.APPROVED,
        CallOutcome.NO_ANSWER: State.WAITING,
        CallOutcome.DENIED: State.REJECTED,
    }[outcome]
    with transaction.atomic():
        req = _load(request_id)
        _not_own(req, staff)
        _move(req, "call", to, call_outcome=outcome)
        _log(
            req,
            Step.CALL,
            staff,
            context,
            EventKind.SUPPORT_CALL,
            staff_only={"note": note},
            outcome=str(outcome),
        )
        if to == State.APPROVED:
            _log(req, Step.APPROVED, staff, context, EventKind.SUPPORT_APPROVED, by="call")
        elif to == State.REJECTED:
            _log(req, Step.REJECTED, staff, context, EventKind.SUPPORT_REJECTED)
            notices.queue(req.user, NoticeKind.SUPPORT_REJECTED, _customer_context(), by="support")
    return req


def _approve_if_complete(req: Request, staff: User, context: Context) -> bool:
    """In a step's transaction: approve a waiting request whose documents and code are done."""
    verified = set(DocumentCheck.objects.filter(request=req).values_list("kind", flat=True))
    if not set(req.required_documents()) <= verified:
        return False
    if not EmailCheck.objects.filter(request=req, used_at__isnull=False).exists():
        return False
    _move(req, "approve")
    _log(req, Step.APPROVED, staff, context, EventKind.SUPPORT_APPROVED, by="documents")
    return True


def verify_document(
    request_id: int, staff: User, kind: str, note: str, context: Context
) -> Request:
    """Mark a document received from the profile's address and verified.

    Raises :class:`WrongState` (only while waiting for the customer),
    :class:`DocumentNotRequired`, :class:`DocumentAlreadyVerified`, :class:`OwnAccount`.
    """
    with transaction.atomic():
        req = _load(request_id)
        _not_own(req, staff)
        if kind not in req.required_documents():
            raise DocumentNotRequired(kind)
        _move(req, "verify a document")
        try:
            with transaction.atomic():
                DocumentCheck.objects.create(
                    request=req,
                    kind=DocumentKind(kind),
                    verified_by=staff,
                    received_from=req.user.email,
                    note=note,
                )
        except IntegrityError:
            raise DocumentAlreadyVerified(kind) from None
        _log(
            req,
            Step.DOCUMENT,
            staff,
            context,
            EventKind.SUPPORT_DOCUMENT,
            staff_only={"note": note},
            document=kind,
        )
        _approve_if_complete(req, staff, context)
    return req


def _digest(salt: str, code: str) -> str:
    return mailedcodes.digest("keyfob.support.email-check", salt, code)


def _seal_context(check_id: int) -> str:
    return f"support-code:{check_id}"


def _wipe_seal(check: EmailCheck) -> None:
    """Remove the sealed code from its notice once the code is spent (used, burnt, replaced)."""
    notices.drop_seal(check.outbox_id)


def send_code(request_id: int, staff: User, context: Context) -> EmailCheck:
    """E-mail a new random code to the profile's address; any earlier code stops working.

    The code exists in clear only in the e-mail: the row keeps its keyed hash, and the
    outbox keeps it encrypted under the key ring until it is sent and spent.
    Raises :class:`WrongState` (only while waiting for the customer), :class:`OwnAccount`.
    """
    now = clock.now()
    with transaction.atomic():
        req = _load(request_id)
        _not_own(req, staff)
        _move(req, "send a code")
        for old in EmailCheck.objects.filter(request=req, used_at__isnull=True, burnt_at=None):
            EmailCheck.objects.filter(pk=old.pk, used_at=None, burnt_at=None).update(burnt_at=now)
            _wipe_seal(old)
        code, salt = mailedcodes.new_code(CODE_DIGITS)
        check = EmailCheck.objects.create(
            request=req,
            salt=salt,
            digest=_digest(salt, code),
            sent_by=staff,
            sent_to=req.user.email,
            created_at=now,
            expires_at=now + timedelta(hours=app_settings.code_hours),
        )
        sealed = keyring.encrypt(code.encode(), context=_seal_context(check.pk))
        check.outbox = notices.queue(
            req.user,
            NoticeKind.SUPPORT_CODE,
            _customer_context(),
            request=req.pk,
            check=check.pk,
            sealed=sealed,
            hours=app_settings.code_hours,
            by="support",
        )
        check.save(update_fields=["outbox"])
        _log(req, Step.CODE_SENT, staff, context, EventKind.SUPPORT_CODE_SENT)
    return check


def unseal_code(params: dict[str, Any]) -> str:
    """The code a SUPPORT_CODE notice carries, for its e-mail; '' once it is spent."""
    return notices.unseal(params, _seal_context(int(params["check"])))


def check_code(request_id: int, staff: User, code: str, context: Context) -> bool:
    """Check the code the customer read back; return whether the request is now approved.

    A wrong code counts (committed before the error is raised); the last allowed wrong try
    burns the code. Raises :class:`WrongCode`, :class:`CodeBurnt`, :class:`CodeExpired`,
    :class:`CodeAlreadyUsed`, :class:`NoCode`, :class:`WrongState`, :class:`OwnAccount`.
    """
    failure: SupportError
    with transaction.atomic():
        req = _load(request_id)
        _not_own(req, staff)
        _move(req, "check a code")
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
        live = EmailCheck.objects.filter(
            pk=check.pk,
            used_at=None,
            burnt_at=None,
            tries__lt=app_settings.code_tries,
            expires_at__gt=now,
        )
        if hmac.compare_digest(_digest(check.salt, code), check.digest):
            if not consume(live, used_at=now):
                raise CodeBurnt("spent meanwhile")
            _wipe_seal(check)
            _log(req, Step.CODE_OK, staff, context, EventKind.SUPPORT_CODE_OK)
            return _approve_if_complete(req, staff, context)
        live.update(tries=F("tries") + 1)
        check.refresh_from_db(fields=["tries"])
        left = max(0, app_settings.code_tries - check.tries)
        _log(req, Step.CODE_WRONG, staff, context, EventKind.SUPPORT_CODE_WRONG, left=left)
        if left == 0:
            EmailCheck.objects.filter(pk=check.pk, burnt_at=None).update(burnt_at=now)
            _wipe_seal(check)
            _log(req, Step.CODE_BURNT, staff, context, None)
            failure = CodeBurnt("too many wrong tries")
        else:
            failure = WrongCode(left)
    raise failure


# Disabling ---------------------------------------------------------------------------


def end_sessions(user: User) -> int:
    """Delete every session of ``user``, signed in or half-way; return how many.

    Sessions are not indexed by account, so this reads them all: fine for an action support
    takes a few times a day, and it stores nothing new (no model change, no password change).
    """
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    get_model = getattr(store_class, "get_model_class", None)
    if get_model is None:
        raise ImproperlyConfigured("the support desk needs a database-backed session engine")
    ended = 0
    for row in get_model().objects.iterator():
        data = store_class().decode(row.session_data)
        if user.pk in session_accounts(data):
            store_class(session_key=row.session_key).delete()
            ended += 1
    return ended


def disable(request_id: int, staff: User, reason: str, context: Context) -> Request:
    """Turn the customer's 2FA off and complete the request, in one transaction.

    Authenticator, recovery codes and trusted browsers go, every session of the customer
    ends, the customer is e-mailed. Raises :class:`WrongState` (only once approved),
    :class:`FourEyes`, :class:`OwnAccount`.
    """
    with transaction.atomic():
        req = _load(request_id)
        _not_own(req, staff)
        if req.state == State.APPROVED and not may_disable(req, staff):
            raise FourEyes("another staff member must disable")
        _move(req, "disable", reason=reason)
        twofactor.disable(req.user, _customer_context(), by=twofactor.By.SUPPORT)
        sessions = end_sessions(req.user)
        _log(
            req,
            Step.DISABLED,
            staff,
            context,
            EventKind.SUPPORT_DISABLED,
            staff_only={"reason": reason, "sessions_ended": sessions},
        )
    return req
