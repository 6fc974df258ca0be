"""Authenticator apps: turning 2FA on with an app (and the phone number asked before), adding
one more. Renaming and removing one: ``security.rename_view``, ``security.remove_view``."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from keyfob import otp, qr
from keyfob.accounts import flows as account_flows
from keyfob.accounts.decorators import reauth_required
from keyfob.accounts.forms import PhoneForm
from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.otp import CodeReused, InvalidCode, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.forms import (
    AuthenticatorNameForm,
    SetupCodeForm,
    SetupKindForm,
)
from keyfob.twofactor.messages import (
    code_error,
)
from keyfob.twofactor.models import Authenticator, Kind
from keyfob.twofactor.views.security import _hold_fresh_codes
from keyfob.twofactor.views.steps import (
    signed_in_user as _user,
)

KNOWN_APPS = ["FreeOTP", "Google Authenticator", "Aegis", "2FAS", "Ente Auth"]
# Set when the person chose to turn 2FA on without giving a phone number.
NO_PHONE_KEY = "keyfob.setup_without_phone"


def _pending_setup(user: User) -> Authenticator | None:
    """The account's authenticator waiting for its first code, unless it has expired."""
    pending = Authenticator.objects.filter(user=user, confirmed_at__isnull=True).first()
    return None if pending is None or flows.setup_expired(pending) else pending


@reauth_required
@require_http_methods(["GET", "POST"])
def setup_view(request: HttpRequest) -> HttpResponse:
    """Turning 2FA on. GET only shows: the key waiting to be scanned, or, with none, the
    choice of the type of codes and a button that creates the key (a POST, like every
    change: opening the page twice must not replace a key already scanned).

    With 2FA on, the same page adds one more authenticator app (a new phone), leaving the
    others as they are.

    Like every sensitive change it needs a recent password (a copied session must not
    enrol its own authenticator), and the code it takes proves the new authenticator only:
    it grants no re-authentication."""
    user = _user(request)
    adding = flows.has_2fa(user)
    if _two_factor_needs_phone(request, user):
        return redirect("account:setup-phone")
    name_form = AuthenticatorNameForm(required=False)
    if request.method == "POST" and "kind" in request.POST:
        chosen = SetupKindForm(request.POST)
        name_form = AuthenticatorNameForm(request.POST, required=False)
        if name_form.is_valid():
            if chosen.is_valid():  # an unknown kind changes nothing
                try:
                    flows.start_setup(
                        user, chosen.cleaned_data["kind"], name_form.cleaned_data["name"]
                    )
                except flows.TooManyAuthenticators:
                    messages.error(
                        request,
                        _(
                            "An account has at most %(n)d authenticator apps. Remove one "
                            "you no longer use first."
                        )
                        % {"n": flows.MAX_AUTHENTICATORS},
                    )
                    return redirect("account:security")
            return redirect("account:setup")
    pending = _pending_setup(user)
    form = SetupCodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = flows.confirm_setup(
                request, user, form.cleaned_data["code"], Context.from_request(request)
            )
        except flows.SetupExpired:
            stale = Authenticator.objects.filter(user=user, confirmed_at__isnull=True).first()
            flows.start_setup(
                user,
                stale.kind if stale is not None else Kind.TOTP,
                stale.name if stale is not None else "",
            )
            messages.error(
                request,
                _("That secret expired before it was confirmed. Scan this new one, please."),
            )
            return redirect("account:setup")
        except (InvalidCode, CodeReused, Throttled) as exc:
            form.add_error("code", code_error(exc))
        else:
            if adding:
                # One more app: the recovery codes stay, and the confirmation before was
                # made with a factor the account already had.
                messages.success(request, _("Your new authenticator app is added."))
                return redirect("account:security")
            _hold_fresh_codes(request, user, codes)
            messages.success(request, _("Two-factor authentication is on."))
            return redirect("account:recovery-codes")
    kind_form = SetupKindForm(initial={"kind": pending.kind if pending else Kind.TOTP})
    if pending is not None and not name_form.is_bound:
        name_form = AuthenticatorNameForm(initial={"name": pending.name}, required=False)
    context: dict[str, object] = {
        "kind_form": kind_form,
        "name_form": name_form,
        "pending": pending is not None,
        "adding": adding,
    }
    if pending is not None:
        uri = flows.key_uri(user, pending).to_uri()
        context |= {
            "form": form,
            "kind": pending.kind,
            "qr_svg": qr.svg(uri, title=_("QR code to scan with your authenticator app")),
            "otpauth_uri": uri,
            "secret_groups": otp.format_secret_groups(otp.b32encode_secret(pending.secret())),
            "apps": KNOWN_APPS,
            "issuer": app_settings.issuer,
            # Whole minutes left, rounded up: "1 minute" until the very end.
            "minutes_left": max(1, -(-flows.setup_seconds_left(pending) // 60)),
        }
    return render(request, "twofactor/setup.html", context)


@reauth_required
@require_http_methods(["GET", "POST"])
def setup_phone_view(request: HttpRequest) -> HttpResponse:
    """Before 2FA goes on, the phone number support would call if the phone is lost.

    A phone number is what support trusts to turn 2FA off, so giving one needs a fresh
    password (DESIGN.md invariant 7), like changing it. Without one, support asks for
    identity documents instead: the page says so, and the person may go on without.
    """
    user = _user(request)
    if flows.has_2fa(user) or user.phone:
        return redirect("account:setup")
    form = PhoneForm(
        request.POST if request.method == "POST" and "skip" not in request.POST else None
    )
    if request.method == "POST" and "skip" in request.POST:
        request.session[NO_PHONE_KEY] = True
        return redirect("account:setup")
    if request.method == "POST" and form.is_valid():
        account_flows.set_phone(request, user, form.cleaned_data["phone"])
        messages.success(request, _("Your phone number is saved."))
        return redirect("account:setup")
    return render(request, "twofactor/setup_phone.html", {"form": form})


def _two_factor_needs_phone(request: HttpRequest, user: User) -> bool:
    """Turning 2FA on asks first for the phone number support would call (setup_view)."""
    return not flows.has_2fa(user) and not user.phone and not request.session.get(NO_PHONE_KEY)
