"""Security keys and passkeys: adding one. Renaming and removing one:
``security.rename_view``, ``security.remove_view``."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from keyfob.accounts.decorators import reauth_redirect, reauth_required
from keyfob.audit.events import Context
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.forms import (
    AddKeyForm,
)
from keyfob.twofactor.messages import (
    ADD_KEY_ERRORS,
    ADD_KEY_MESSAGES,
    key_error,
)
from keyfob.twofactor.models import Purpose
from keyfob.twofactor.views.apps import _two_factor_needs_phone
from keyfob.twofactor.views.security import NEXT_AFTER_CODES_KEY, _hold_fresh_codes
from keyfob.twofactor.views.signin import safe_next
from keyfob.twofactor.views.steps import (
    key_options,
)
from keyfob.twofactor.views.steps import (
    signed_in_user as _user,
)


def _too_many_keys(request: HttpRequest) -> HttpResponse:
    messages.error(request, key_error(flows.TooManyKeys(), ADD_KEY_MESSAGES))
    return redirect("account:security")


@reauth_required
@require_http_methods(["GET", "POST"])
def add_key_view(request: HttpRequest) -> HttpResponse:
    """Adding a security key or passkey; the first authenticator of the account turns 2FA
    on, as the setup page's app does. The page's script runs the ceremony (options from
    :func:`add_key_options_view`) and posts the browser's answer with the name.

    Like every sensitive change it needs a recent confirmation; a key that turns 2FA on
    proves itself, not the person, so it grants no re-authentication."""
    user = _user(request)
    adding = flows.has_2fa(user)
    if flows.only_keys_confirm(user) and not flows.phishing_resistant(request):
        # A staff member's further key: this session's freshness may come from a code
        # relayed before their first key was added (with its enrolment code); it must be
        # confirmed with that key.
        return reauth_redirect(reverse("account:add-key"))
    if _two_factor_needs_phone(request, user):
        return redirect("account:setup-phone")
    if len(flows.security_keys(user)) >= app_settings.max_security_keys:
        return _too_many_keys(request)
    form = AddKeyForm(
        request.POST if request.method == "POST" else None,
        invite=flows.needs_staff_invite(user),
    )
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        try:
            codes = flows.register_key(
                request,
                user,
                form.cleaned_data["credential"],
                name,
                Context.from_request(request),
                invite=form.cleaned_data.get("invite", ""),
            )
        except flows.TooManyKeys:  # another tab added the last one meanwhile
            return _too_many_keys(request)
        except ADD_KEY_ERRORS as exc:
            form.add_error(None, key_error(exc, ADD_KEY_MESSAGES))
        else:
            if adding:
                label = name or str(_("Security key"))
                messages.success(
                    request, _("Your security key “%(name)s” is added.") % {"name": label}
                )
                return redirect("account:security")
            _hold_fresh_codes(request, user, codes)
            messages.success(request, _("Two-factor authentication is on."))
            return redirect("account:recovery-codes")
    return render(request, "twofactor/add_key.html", {"form": form, "adding": adding})


@reauth_required
@require_http_methods(["GET", "POST"])
def staff_key_view(request: HttpRequest) -> HttpResponse:
    """A staff member without a security key, sent here by a staff page (``staff_required``
    under the staff rule): one page that says what staff need and why, takes the operator's
    enrolment code and adds the key, then goes on to ``next`` (the staff page asked for).

    No phone-number step first: the number on a profile is what support calls to turn a
    customer's 2FA off, but a staff member's key is replaced by an operator who knows them
    (a new enrolment code handed over in person or on a call), not by the desk. The key,
    added with the enrolment code, proves the staff rule for this session
    (``flows.register_key``), so the desk opens without a second confirmation; when the key
    turned 2FA on, the recovery codes are shown once first, then ``next``."""
    user = _user(request)
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if not flows.needs_staff_invite(user):
        # Not staff, the rule is off, or a key is there already: the page asked for decides.
        return redirect(next_url)
    turning_on = not flows.has_2fa(user)
    form = AddKeyForm(request.POST if request.method == "POST" else None, invite=True)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        try:
            codes = flows.register_key(
                request,
                user,
                form.cleaned_data["credential"],
                name,
                Context.from_request(request),
                invite=form.cleaned_data["invite"],
            )
        except ADD_KEY_ERRORS as exc:
            form.add_error(None, key_error(exc, ADD_KEY_MESSAGES))
        else:
            label = name or str(_("Security key"))
            messages.success(request, _("Your security key “%(name)s” is added.") % {"name": label})
            if codes:
                _hold_fresh_codes(request, user, codes)
                request.session[NEXT_AFTER_CODES_KEY] = next_url
                return redirect("account:recovery-codes")
            return redirect(next_url)
    return render(
        request,
        "twofactor/staff_key.html",
        {"form": form, "next": next_url, "turning_on": turning_on},
    )


@require_POST
@reauth_required
def add_key_options_view(request: HttpRequest) -> HttpResponse:
    """The options of the ceremony that adds a key (JSON, for webauthn.js)."""
    return key_options(request, Purpose.REGISTER, _user(request))
