"""Sign-in's code step and Account → Security. Views handle HTTP; flows do the work."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from keyfob import otp, qr
from keyfob.accounts import flows as account_flows
from keyfob.accounts.models import User
from keyfob.accounts.text import wait_text
from keyfob.accounts.views import safe_next
from keyfob.audit.events import Context
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.forms import CodeForm, DisableForm

KNOWN_APPS = ["FreeOTP", "Google Authenticator", "Aegis", "2FAS", "Ente Auth"]


def code_error(exc: KeyfobError) -> str:
    """What to tell a person whose code was refused, and what to do next."""
    if isinstance(exc, Throttled):
        return _("Too many failed attempts. Try again in %(wait)s.") % {
            "wait": wait_text(exc.retry_after)
        }
    if isinstance(exc, CodeReused):
        return _("This code has already been used. Wait for the next code in your app.")
    if isinstance(exc, flows.ClockDrift):
        minutes = max(1, round(abs(exc.seconds) / 60))
        if exc.seconds < 0:
            text = ngettext(
                "Your phone's clock seems to be about %(n)d minute slow.",
                "Your phone's clock seems to be about %(n)d minutes slow.",
                minutes,
            )
        else:
            text = ngettext(
                "Your phone's clock seems to be about %(n)d minute fast.",
                "Your phone's clock seems to be about %(n)d minutes fast.",
                minutes,
            )
        return (
            (text % {"n": minutes})
            + " "
            + _("Set its date and time to update automatically, then try a new code.")
        )
    if isinstance(exc, flows.NotEnrolled):
        return _("Two-factor authentication is not on for this account.")
    return _("This code is not right. Check the code for this account in your app.")


@require_http_methods(["GET", "POST"])
def signin_code_view(request: HttpRequest) -> HttpResponse:
    found = account_flows.pending(request, app_settings.pending_signin_seconds)
    if found is None:
        if request.method == "POST" or account_flows.PENDING_KEY in request.session:
            messages.error(request, _("Your sign-in took too long. Please start again."))
        return redirect("login")
    user, next_url = found
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            flows.verify_code(user, form.cleaned_data["code"], Context.from_request(request))
        except (InvalidCode, CodeReused, Throttled, flows.NotEnrolled) as exc:
            form.add_error("code", code_error(exc))
        else:
            account_flows.complete_signin(request, user, second_factor="code")
            return redirect(safe_next(request, next_url))
    return render(request, "twofactor/signin_code.html", {"form": form})


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@login_required
def security_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    auth = flows.confirmed_authenticator(user)
    return render(request, "twofactor/security.html", {"authenticator": auth})


@login_required
@require_http_methods(["GET", "POST"])
def setup_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if flows.has_2fa(user):
        messages.info(request, _("Two-factor authentication is already on."))
        return redirect("account:security")
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            flows.confirm_setup(user, form.cleaned_data["code"], Context.from_request(request))
        except flows.SetupExpired:
            messages.error(
                request,
                _("That secret expired before it was confirmed. Scan this new one, please."),
            )
            return redirect("account:setup")
        except (InvalidCode, CodeReused, Throttled) as exc:
            form.add_error("code", code_error(exc))
        else:
            messages.success(request, _("Two-factor authentication is on."))
            return redirect("account:security")
    auth = flows.start_setup(user)
    uri = flows.key_uri(user, auth).to_uri()
    context = {
        "form": form,
        "qr_svg": qr.svg(uri, title=_("QR code to scan with your authenticator app")),
        "otpauth_uri": uri,
        "secret_groups": otp.format_secret_groups(otp.b32encode_secret(auth.secret())),
        "apps": KNOWN_APPS,
        "issuer": app_settings.issuer,
    }
    return render(request, "twofactor/setup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def disable_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not flows.has_2fa(user):
        return redirect("account:security")
    form = DisableForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        context = Context.from_request(request)
        try:
            account_flows.check_password(request, user.email, form.cleaned_data["password"])
        except account_flows.InvalidCredentials:
            form.add_error("password", _("This password is not right."))
        except Throttled as exc:
            form.add_error("password", code_error(exc))
        else:
            try:
                flows.verify_code(user, form.cleaned_data["code"], context)
            except (InvalidCode, CodeReused, Throttled, flows.NotEnrolled) as exc:
                form.add_error("code", code_error(exc))
            else:
                flows.disable(user, context)
                messages.success(request, _("Two-factor authentication is off."))
                return redirect("account:security")
    return render(request, "twofactor/disable.html", {"form": form})
