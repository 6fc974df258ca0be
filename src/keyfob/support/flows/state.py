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

from typing import Any

from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import Channel as EventChannel
from keyfob.audit.models import EventKind, NoticeKind
from keyfob.core import clock
from keyfob.support.app_settings import app_settings
from keyfob.support.flows.errors import NotFound, OwnAccount, WrongState
from keyfob.support.models import (
    ACTIVE_STATES,
    Request,
    RequestEvent,
    State,
    Step,
)

# Steps that count as "recording a check", for the four-eyes rule.
CHECK_STEPS = (Step.CALL, Step.DOCUMENT, Step.CODE_SENT, Step.CODE_OK, Step.CODE_WRONG)


def customer_context() -> Context:
    """The customer-side context of a staff step: the web, no address or browser of theirs."""
    return Context(channel=EventChannel.WEB)


def load_request(request_id: int) -> Request:
    req = Request.objects.select_related("user").filter(pk=request_id).first()
    if req is None:
        raise NotFound("no such request")
    return req


def not_own(req: Request, staff: User | None) -> None:
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
    "change the address": ((State.APPROVED,), (State.COMPLETED,)),
}


# The states whose arrival is told by a SUPPORT_PROGRESS notice (LOST_EMAIL_PROGRESS for a
# change of address, which also tells its refusal).
PROGRESS_NOTICES = (State.WAITING, State.APPROVED, State.CANCELLED)
EMAIL_PROGRESS_NOTICES = (*PROGRESS_NOTICES, State.REJECTED)


def move(req: Request, step: str, to: str | None = None, **changes: Any) -> None:
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
    before, req.state = req.state, to
    req.updated_at = now
    for name, value in changes.items():
        setattr(req, name, value)
    if to != before and req.is_email_change and to in EMAIL_PROGRESS_NOTICES:
        _email_progress(req, to)
    elif to != before and not req.is_email_change and to in PROGRESS_NOTICES:
        # Each change of state reaches the customer (opening, refusal and the final
        # disable have notices of their own), in the step's transaction.
        notices.queue(
            req.user,
            NoticeKind.SUPPORT_PROGRESS,
            customer_context(),
            request=req.pk,
            state=str(to),
            documents=[str(kind) for kind in req.required_documents()],
            support_email=app_settings.support_email,
            by="support",
        )


def _email_progress(req: Request, to: str) -> None:
    """A change of address's news, to the account's address (which the real holder may
    still read) and to the request's new, confirmed address (the customer's)."""
    facts: dict[str, Any] = {
        "request": req.pk,
        "state": str(to),
        "documents": [str(kind) for kind in req.required_documents()],
        "support_email": app_settings.support_email,
        "new": req.new_email,
        "by": "support",
    }
    notices.queue(req.user, NoticeKind.LOST_EMAIL_PROGRESS, customer_context(), **facts)
    notices.queue(
        req.user, NoticeKind.LOST_EMAIL_PROGRESS, customer_context(), to=req.new_email, **facts
    )


def log_step(
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
    seen_by_customer = context if actor is None else customer_context()
    record(req.user, event, seen_by_customer, request=req.pk, **detail)


def checkers(req: Request) -> set[int]:
    """The ids of the staff members who recorded a check on ``req``."""
    rows = RequestEvent.objects.filter(request=req, step__in=CHECK_STEPS, actor__isnull=False)
    return set(rows.values_list("actor_id", flat=True))


def may_disable(req: Request, staff: User) -> bool:
    """Whether the four-eyes rule lets ``staff`` disable (the state is not checked)."""
    return not app_settings.four_eyes or staff.pk not in checkers(req)


def hand_off(req: Request, site: str) -> int:
    """In the step's transaction that approved ``req``, under the four-eyes rule: e-mail
    every staff member who may now disable it (active staff but the customer and those who
    recorded a check) that it waits for them, with the link to it when ``site`` (the origin,
    ``https://host``) is known. Return how many were told."""
    if not app_settings.four_eyes:
        return 0
    staff = User.objects.filter(is_staff=True, is_active=True).exclude(pk=req.user_id)
    told = 0
    for member in staff.exclude(pk__in=checkers(req)).order_by("pk"):
        notices.queue(
            member, NoticeKind.SUPPORT_HANDOFF, customer_context(), request=req.pk, site=site,
            by="support", purpose=str(req.purpose),
        )  # fmt: skip
        told += 1
    return told


def waiting_for(staff: User) -> list[Request]:
    """Approved requests that ``staff`` may finish: not their own account and, under the
    four-eyes rule, none on which they recorded a check. What the second staff member sees
    waiting for them (the menu's count and the top of the desk)."""
    rows = Request.objects.filter(state=State.APPROVED).exclude(user=staff)
    if app_settings.four_eyes:
        checked = RequestEvent.objects.filter(step__in=CHECK_STEPS, actor=staff)
        rows = rows.exclude(pk__in=checked.values("request_id"))
    return list(rows.select_related("user").order_by("created_at")[:200])
