"""Opening a request (the customer), cancelling it, and turning 2FA off at its end."""

from __future__ import annotations

from django.core import signing
from django.db import IntegrityError, transaction

from keyfob.accounts.flows import end_sessions
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock
from keyfob.support.app_settings import app_settings
from keyfob.support.flows.errors import (
    AlreadyActive,
    BadCancelLink,
    FourEyes,
    NotEnrolled,
    OwnAccount,
    WrongPurpose,
)
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
    Request,
    State,
    Step,
)
from keyfob.twofactor import flows as twofactor

_CANCEL_SALT = "keyfob.support.cancel-link"


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
            log_step(
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
                context if staff is None else customer_context(),
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
    return load_request(request_id)


def cancel(
    request_id: int, context: Context, *, staff: User | None = None, reason: str = ""
) -> Request:
    """Cancel a request in progress (the customer from the e-mailed link, or staff)."""
    with transaction.atomic():
        req = load_request(request_id)
        not_own(req, staff)
        move(req, "cancel", reason=reason)
        log_step(
            req,
            Step.CANCELLED,
            staff,
            context,
            EventKind.SUPPORT_CANCELLED,
            staff_only={"reason": reason} if reason else None,
        )
    return req


def disable(request_id: int, staff: User, reason: str, context: Context) -> Request:
    """Turn the customer's 2FA off and complete the request, in one transaction.

    Authenticator, recovery codes and trusted browsers go, every session of the customer
    ends, the customer is e-mailed. Raises :class:`WrongState` (only once approved),
    :class:`FourEyes`, :class:`OwnAccount`.
    """
    with transaction.atomic():
        req = load_request(request_id)
        not_own(req, staff)
        if req.is_email_change:
            raise WrongPurpose("a change of address ends with the address changed")
        if req.state == State.APPROVED and not may_disable(req, staff):
            raise FourEyes("another staff member must disable")
        move(req, "disable", reason=reason)
        twofactor.disable_by_support(req.user, customer_context())
        sessions = end_sessions(req.user)
        log_step(
            req,
            Step.DISABLED,
            staff,
            context,
            EventKind.SUPPORT_DISABLED,
            staff_only={"reason": reason, "sessions_ended": sessions},
        )
    return req
