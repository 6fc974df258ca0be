"""The support console (staff with 2FA only) and the customer's two pages.

Views handle HTTP; :mod:`keyfob.support.flows` does the work. A refused step (out of
order, four eyes, own account, a burnt code…) comes back as a message on the request's
page and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from keyfob.accounts import flows as account_flows
from keyfob.accounts.addresses import normal_email
from keyfob.accounts.models import AccountKind, User
from keyfob.accounts.text import wait_text
from keyfob.audit.events import Context
from keyfob.audit.models import SecurityEvent
from keyfob.otp import Throttled
from keyfob.support import flows
from keyfob.support.app_settings import app_settings
from keyfob.support.forms import (
    CallForm,
    CancelForm,
    ChangeAddressForm,
    CheckCodeForm,
    CustomerRequestForm,
    DisableForm,
    DocumentForm,
    LostEmailCodeForm,
    LostEmailForm,
    SearchForm,
    StaffOpenForm,
)
from keyfob.support.models import (
    ACTIVE_STATES,
    REQUIRED_DOCUMENTS,
    CallOutcome,
    DocumentCheck,
    DocumentKind,
    EmailCheck,
    Lost,
    Request,
    RequestEvent,
    State,
)
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor.decorators import staff_required


def _origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _staff(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _wrong_state(exc: flows.SupportError) -> str:
    assert isinstance(exc, flows.WrongState)
    state = State(exc.state).label
    if exc.step == "disable" and exc.state == State.COMPLETED:
        return _("Two-factor authentication was already disabled for this request.")
    if exc.step == "change the address" and exc.state == State.COMPLETED:
        return _("The sign-in address was already changed for this request.")
    if exc.step == "disable":
        text = _(
            "Two-factor authentication can only be disabled once the identity check has passed."
        )
    elif exc.step == "change the address":
        text = _("The sign-in address can only be changed once the identity check has passed.")
    elif exc.step == "call":
        text = _(
            "A call can only be recorded while the request is open or waiting for the customer."
        )
    elif exc.step == "cancel":
        text = _("Only a request in progress can be cancelled.")
    else:
        text = _(
            "Documents and the e-mailed code come after a call that did not reach the "
            "account holder, while the request waits for the customer."
        )
    return text + " " + _("This request is: %(state)s.") % {"state": state}


def _wrong_code(exc: flows.SupportError) -> str:
    left = exc.left if isinstance(exc, flows.WrongCode) else 0
    return ngettext(
        "This is not the code that was sent. %(n)d try left before it stops working.",
        "This is not the code that was sent. %(n)d tries left before it stops working.",
        left,
    ) % {"n": left}


# What to tell the staff member whose step was refused, by the error's code.
REFUSALS: dict[str, Callable[[flows.SupportError], str]] = {
    "wrong_state": _wrong_state,
    "own_account": lambda exc: _(
        "You cannot act on a request for your own account: another staff member must."
    ),
    "four_eyes": lambda exc: _(
        "You recorded checks on this request, so another staff member must disable "
        "two-factor authentication."
    ),
    "not_enrolled": lambda exc: _(
        "This account does not use two-factor authentication: there is nothing to turn off."
    ),
    "already_active": lambda exc: _("This account already has a request in progress."),
    "document_not_required": lambda exc: _(
        "This document is not one asked for this kind of account."
    ),
    "document_already_verified": lambda exc: _("This document is already marked verified."),
    "no_code": lambda exc: _(
        "No code has been sent yet. Send one to the profile's e-mail address first."
    ),
    "code_expired": lambda exc: _("This code has expired. Send a new one."),
    "code_burnt": lambda exc: _(
        "This code can no longer be used (too many wrong tries, or a newer code was "
        "sent). Send a new one."
    ),
    "code_already_used": lambda exc: _("The code was already read back correctly."),
    "wrong_code": _wrong_code,
    "wrong_purpose": lambda exc: _("This step is not part of this kind of request."),
    "address_taken": lambda exc: _(
        "Another account uses the new address now, so the sign-in address cannot change. "
        "Nothing was changed: tell the customer, and reject or cancel the request."
    ),
}


def refusal(exc: flows.SupportError) -> str:
    """What to tell the staff member whose step was refused."""
    found = REFUSALS.get(exc.code)
    return found(exc) if found is not None else _("This step is not possible now.")


# The console ---------------------------------------------------------------------------


@staff_required
def list_view(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    state, query = State.OPEN.value, ""
    if form.is_valid():
        state = form.cleaned_data["state"] or state
        query = form.cleaned_data["q"].strip()
    rows = Request.objects.select_related("user")
    if query:
        # Part of an address, compared in the one normal form (stored addresses are in
        # it): not by the database's case folding, which differs between databases.
        rows = rows.filter(user__email__contains=normal_email(query))
    counts = dict(rows.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    tabs = [(s, s.label, counts.get(s.value, 0)) for s in State]
    context = {
        "waiting": flows.waiting_for(_staff(request)),
        "requests": rows.filter(state=state)[:200],
        "tabs": tabs,
        "state": state,
        "state_label": State(state).label,
        "query": query,
    }
    return render(request, "support/list.html", context)


@staff_required
@require_http_methods(["GET", "POST"])
def new_view(request: HttpRequest) -> HttpResponse:
    form = StaffOpenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        customer = User.objects.with_email(form.cleaned_data["email"]).first()
        if customer is None:
            form.add_error("email", _("No account has this e-mail address."))
        else:
            try:
                req = flows.open_request(
                    customer,
                    Context.from_request(request),
                    site=_origin(request),
                    channel=form.cleaned_data["channel"],
                    staff=_staff(request),
                    note=form.cleaned_data["note"],
                )
            except flows.AlreadyActive as exc:
                messages.error(request, refusal(exc))
                if exc.request_id is not None:
                    return redirect("support:detail", exc.request_id)
            except flows.SupportError as exc:
                form.add_error(None, refusal(exc))
            else:
                messages.success(request, _("The request is open. The customer was e-mailed."))
                return redirect("support:detail", req.pk)
    return render(request, "support/new.html", {"form": form})


def _load(pk: int) -> Request:
    req = Request.objects.select_related("user", "opened_by").filter(pk=pk).first()
    if req is None:
        raise Http404
    return req


def _code_status(check: EmailCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    from keyfob.core import clock

    if check.used_at is not None:
        status = "used"
    elif check.burnt_at is not None:
        status = "burnt"
    elif check.expires_at <= clock.now():
        status = "expired"
    else:
        status = "live"
    return {
        "check": check,
        "status": status,
        "left": max(0, app_settings.code_tries - check.tries),
    }


def _event_detail(event: RequestEvent) -> str:
    """What a timeline row adds to its step: the call's outcome or the document."""
    outcome, document = event.detail.get("outcome"), event.detail.get("document")
    if outcome in CallOutcome.values:
        return str(CallOutcome(outcome).label)
    if document in DocumentKind.values:
        return str(DocumentKind(document).label)
    return ""


def _detail(
    request: HttpRequest,
    req: Request,
    *,
    status: int = 200,
    bound: dict[str, Any] | None = None,
) -> HttpResponse:
    """The request's page; ``bound`` holds the one form that was just posted, with errors."""
    bound = bound or {}
    staff = _staff(request)
    customer = req.user
    verified = {
        d.kind: d for d in DocumentCheck.objects.filter(request=req).select_related("verified_by")
    }
    documents = []
    for kind in req.required_documents():
        form = bound.get(f"doc-{kind}") or DocumentForm(prefix=f"doc-{kind}")
        documents.append(
            {
                "kind": kind,
                "label": DocumentKind(kind).label,
                "done": verified.get(kind),
                "form": form,
            }
        )
    # The posted form's errors are also said at the top: its section may not be on the page
    # (disabling a request that is not approved, for instance).
    errors = [str(e) for form in bound.values() for field in form.errors.values() for e in field]
    context = {
        "req": req,
        "errors": errors,
        "customer": customer,
        "own": customer.pk == staff.pk,
        "twofactor_since": twofactor.twofactor_since(customer),
        "activity": SecurityEvent.objects.filter(user=customer)[:15],
        "previous": Request.objects.filter(user=customer).exclude(pk=req.pk)[:20],
        "timeline": [(e, _event_detail(e)) for e in req.events.select_related("actor")],
        "documents": documents,
        "code": _code_status(EmailCheck.objects.filter(request=req).first()),
        "call_form": bound.get("call") or CallForm(prefix="call"),
        "code_form": bound.get("code") or CheckCodeForm(prefix="code"),
        "disable_form": bound.get("disable") or DisableForm(prefix="disable"),
        "address_form": bound.get("address") or ChangeAddressForm(prefix="address"),
        "cancel_form": bound.get("cancel") or CancelForm(prefix="cancel"),
        "may_disable": flows.may_disable(req, staff),
        "four_eyes": app_settings.four_eyes,
        "can_call": req.state in (State.OPEN, State.WAITING),
        "waiting": req.state == State.WAITING,
        "active": req.state in ACTIVE_STATES,
        "code_hours": app_settings.code_hours,
    }
    return render(request, "support/detail.html", context, status=status)


@staff_required
def detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, _load(pk))


def _step(
    request: HttpRequest, pk: int, name: str, form: Any, act: Any, success: str
) -> HttpResponse:
    """Run one staff step: an invalid form re-renders the page, a refusal is a message."""
    req = _load(pk)
    if not form.is_valid():
        return _detail(request, req, bound={name: form})
    try:
        act(req, form.cleaned_data)
    except flows.SupportError as exc:
        messages.error(request, refusal(exc))
    else:
        messages.success(request, success)
        req.refresh_from_db()
        if req.state == State.APPROVED and not flows.may_disable(req, _staff(request)):
            # The four-eyes hand-off: say who finishes, and where it waits for them.
            messages.info(
                request,
                _(
                    "The identity check has passed. Another staff member must now disable "
                    "two-factor authentication: the request waits for them at the top of "
                    "the support desk."
                ),
            )
    return redirect("support:detail", req.pk)


@staff_required
@require_POST
def call_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(req: Request, data: dict[str, Any]) -> None:
        done = flows.record_call(
            req.pk,
            _staff(request),
            data["outcome"],
            data["note"],
            Context.from_request(request),
            site=_origin(request),
        )
        if done.state == State.REJECTED:
            messages.info(request, _("The customer is e-mailed that the request was refused."))

    form = CallForm(request.POST, prefix="call")
    return _step(request, pk, "call", form, act, _("The call is recorded."))


@staff_required
@require_POST
def document_view(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    if kind not in DocumentKind.values:
        raise Http404

    def act(req: Request, data: dict[str, Any]) -> None:
        flows.verify_document(
            req.pk,
            _staff(request),
            kind,
            data["note"],
            Context.from_request(request),
            site=_origin(request),
        )

    form = DocumentForm(request.POST, prefix=f"doc-{kind}")
    return _step(request, pk, f"doc-{kind}", form, act, _("The document is marked verified."))


@staff_required
@require_POST
def send_code_view(request: HttpRequest, pk: int) -> HttpResponse:
    req = _load(pk)
    try:
        check = flows.send_code(req.pk, _staff(request), Context.from_request(request))
    except flows.SupportError as exc:
        messages.error(request, refusal(exc))
    else:
        messages.success(
            request,
            _("A new code is on its way to %(email)s. Ask the customer to read it back.")
            % {"email": check.sent_to},
        )
    return redirect("support:detail", req.pk)


@staff_required
@require_POST
def check_code_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(req: Request, data: dict[str, Any]) -> None:
        flows.check_code(
            req.pk,
            _staff(request),
            data["code"],
            Context.from_request(request),
            site=_origin(request),
        )

    form = CheckCodeForm(request.POST, prefix="code")
    return _step(request, pk, "code", form, act, _("The code is right."))


@staff_required
@require_POST
def disable_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(req: Request, data: dict[str, Any]) -> None:
        flows.disable(req.pk, _staff(request), data["reason"], Context.from_request(request))

    form = DisableForm(request.POST, prefix="disable")
    return _step(
        request,
        pk,
        "disable",
        form,
        act,
        _("Two-factor authentication is off for this account. The customer was e-mailed."),
    )


@staff_required
@require_POST
def change_address_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(req: Request, data: dict[str, Any]) -> None:
        flows.change_address(req.pk, _staff(request), data["reason"], Context.from_request(request))

    form = ChangeAddressForm(request.POST, prefix="address")
    return _step(
        request,
        pk,
        "address",
        form,
        act,
        _("The sign-in address is changed. Both addresses were e-mailed."),
    )


@staff_required
@require_POST
def staff_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    def act(req: Request, data: dict[str, Any]) -> None:
        flows.cancel(
            req.pk, Context.from_request(request), staff=_staff(request), reason=data["reason"]
        )

    form = CancelForm(request.POST, prefix="cancel")
    return _step(request, pk, "cancel", form, act, _("The request is cancelled."))


# The customer's pages ------------------------------------------------------------------


def _journey(user: User, req: Request) -> dict[str, Any]:
    """What the customer's page says about ``req``: who does what next, in words."""
    check = EmailCheck.objects.filter(request=req).first()
    status = _code_status(check)
    return {
        "req": req,
        "phone": account_flows.mask_phone(user.phone),
        "documents": [DocumentKind(k).label for k in req.required_documents()],
        "code_live": status is not None and status["status"] == "live",
        "code_used": status is not None and status["status"] == "used",
        "account_email": user.email,
    }


@require_http_methods(["GET", "POST"])
def open_view(request: HttpRequest) -> HttpResponse:
    """Ask support to turn 2FA off, and follow the request: after a right password.

    The page works for an hour after the password step (not the code step's 5 minutes):
    the customer may take their time to write, and come back to see where things are.
    """
    found = account_flows.pending(request, app_settings.request_window_seconds)
    context: dict[str, Any] = {"support_email": app_settings.support_email}
    if found is None and request.user.is_authenticated:
        # Signed in (a trusted browser, or no 2FA): no request is needed to get in.
        messages.info(
            request, _("You are signed in: your authenticators are managed on this page.")
        )
        return redirect("account:security")
    if found is None:
        # Without a right password just now: the support address, and nothing about accounts.
        # A message typed meanwhile is shown back, to copy into an e-mail: never lost.
        if request.method == "POST":
            messages.error(request, _("Your sign-in took too long. Please start again."))
            context["message"] = request.POST.get("message", "")[:4000]
        return render(request, "support/open_signed_out.html", context)
    user, _next = found
    existing = flows.active_request(user)
    form = CustomerRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and existing is None and form.is_valid():
        try:
            flows.open_request(
                user,
                Context.from_request(request),
                site=_origin(request),
                note=form.cleaned_data["message"],
            )
        except flows.AlreadyActive:
            pass  # opened a moment ago, from another tab: the page says so
        except flows.NotEnrolled:
            messages.info(request, _("Two-factor authentication is not on for this account."))
            return redirect("login")
        else:
            messages.success(request, _("Your request is sent to support."))
        return redirect("support:open")
    last = Request.objects.filter(user=user).first()
    context.update(
        {
            "form": form,
            "existing": existing,
            "ended": last if last is not None and not last.is_active else None,
            "has_phone": bool(user.phone),
            "phone": account_flows.mask_phone(user.phone),
            "documents": [
                DocumentKind(k).label
                for k in REQUIRED_DOCUMENTS.get(user.kind, (DocumentKind.IDENTITY,))
            ],
            "account_email": user.email,
        }
    )
    if existing is not None:
        context |= _journey(user, existing)
    return render(request, "support/open.html", context)


@require_http_methods(["GET", "POST"])
def cancel_link_view(request: HttpRequest, value: str) -> HttpResponse:
    """The link in the "request opened" e-mail: a page with a button (a GET changes nothing,
    so a mail scanner that follows links cancels nothing)."""
    try:
        req = flows.request_from_link(value)
    except flows.SupportError:
        return render(request, "support/cancel.html", {"invalid": True}, status=400)
    if request.method == "POST":
        try:
            flows.cancel(req.pk, Context.from_request(request))
        except flows.WrongState:
            pass  # the page shows where the request is
        else:
            messages.success(request, _("The request is cancelled. Nothing was changed."))
        return redirect(request.path)
    return render(request, "support/cancel.html", {"req": req, "active": req.is_active})


# "I no longer have access to my e-mail address" (signed out) -----------------------------

# The request waiting for its code (its id: the code, not this, is the secret), and what the
# last confirmed request said, for the page that says what happens next.
LOST_EMAIL_CLAIM_KEY = "keyfob.lost_email_claim"
LOST_EMAIL_DONE_KEY = "keyfob.lost_email_done"


@require_http_methods(["GET", "POST"])
def lost_email_view(request: HttpRequest) -> HttpResponse:
    """Which account, the new address, what else was lost: a code goes to the new address.
    The same answer whether an account matches or not."""
    form = LostEmailForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            claim = flows.start_claim(
                Context.from_request(request),
                account=data["account"],
                new_email=data["new_email"],
                lost=data["lost"],
                language=translation.get_language() or "",
            )
        except Throttled as exc:
            form.add_error(
                None,
                _("Too many requests. Try again in %(wait)s.")
                % {"wait": wait_text(exc.retry_after)},
            )
        else:
            request.session[LOST_EMAIL_CLAIM_KEY] = claim.pk
            return redirect("support:lost-email-code")
    return render(request, "support/lost_email.html", {"form": form})


@require_http_methods(["GET", "POST"])
def lost_email_code_view(request: HttpRequest) -> HttpResponse:
    """The code e-mailed to the new address, typed back: only then does the request go to
    support."""
    claim = flows.pending_claim(request.session.get(LOST_EMAIL_CLAIM_KEY))
    if claim is None:
        request.session.pop(LOST_EMAIL_CLAIM_KEY, None)
        messages.info(request, _("Start here: no request is waiting for a code."))
        return redirect("support:lost-email")
    form = LostEmailCodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            flows.confirm_claim(
                claim.pk,
                form.cleaned_data["code"],
                Context.from_request(request),
                site=_origin(request),
            )
        except flows.WrongClaimCode as exc:
            form.add_error(
                "code",
                ngettext(
                    "That is not the code we sent. %(left)d try left.",
                    "That is not the code we sent. %(left)d tries left.",
                    exc.left,
                )
                % {"left": exc.left},
            )
        except flows.ClaimLost:
            request.session.pop(LOST_EMAIL_CLAIM_KEY, None)
            messages.error(
                request,
                _(
                    "This code no longer works (already used, too many tries, or too late). "
                    "Start again."
                ),
            )
            return redirect("support:lost-email")
        else:
            request.session.pop(LOST_EMAIL_CLAIM_KEY, None)
            request.session[LOST_EMAIL_DONE_KEY] = {"email": claim.new_email, "lost": claim.lost}
            return redirect("support:lost-email-sent")
    context = {"form": form, "email": claim.new_email, "minutes": flows.CLAIM_CODE_MINUTES}
    return render(request, "support/lost_email_code.html", context)


@require_http_methods(["GET"])
def lost_email_sent_view(request: HttpRequest) -> HttpResponse:
    """What happens next, in words (the same for a known account or not)."""
    done = request.session.get(LOST_EMAIL_DONE_KEY)
    if not isinstance(done, dict):
        return redirect("support:lost-email")
    lost = str(done.get("lost", ""))
    context = {
        "email": str(done.get("email", "")),
        "lost_password": lost in (Lost.PASSWORD, Lost.BOTH),
        "lost_authenticator": lost in (Lost.AUTHENTICATOR, Lost.BOTH),
        "support_email": app_settings.support_email,
        "documents": [
            (AccountKind(kind).label, [DocumentKind(d).label for d in docs])
            for kind, docs in REQUIRED_DOCUMENTS.items()
        ],
    }
    return render(request, "support/lost_email_sent.html", context)
