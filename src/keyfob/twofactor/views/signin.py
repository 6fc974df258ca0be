"""Sign-in, from the password step to the full session; sign-out; re-authentication.

One owner for the sign-in state machine: the password step (accounts' check_password), then
for an account with 2FA either a trusted browser or a pending marker and the code step; the
full session (a new session id) only after the second factor.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from keyfob.accounts import flows as account_flows
from keyfob.accounts.forms import LoginForm
from keyfob.accounts.models import User
from keyfob.accounts.proofs import Made
from keyfob.accounts.text import wait_text
from keyfob.audit.events import Context
from keyfob.otp import KeyfobError, Throttled
from keyfob.twofactor import flows, trust
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.forms import CredentialForm, ReauthForm, SignInCodeForm, Way
from keyfob.twofactor.messages import passkey_error
from keyfob.twofactor.models import Purpose
from keyfob.twofactor.views.steps import (
    check_key,
    check_second_factor,
    key_options,
    key_options_refused,
    password_checked,
    recovery_left_message,
    second_factor_choice,
)


def safe_next(request: HttpRequest, value: str | None) -> str:
    """``value`` if it is a path on this site, else the default page after sign-in."""
    if (
        value
        and value.startswith("/")
        and not value.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(
            value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return value
    return reverse("account:security")


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    form = LoginForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = account_flows.check_password(
                request, form.cleaned_data["email"], form.cleaned_data["password"]
            )
        except Throttled as exc:
            form.add_error(
                None,
                _("Too many failed sign-ins. Try again in %(wait)s.")
                % {"wait": wait_text(exc.retry_after)},
            )
        except account_flows.InvalidCredentials:
            form.add_error(None, _("The e-mail address or the password is not right."))
        else:
            step = flows.after_password(request, user, next_url, trust.token(request))
            if step.after == flows.After.CODE_STEP:
                # "I lost my authenticator" (Can't sign in?): the request to support, which
                # needs only the password step, comes next, not the code it cannot give.
                lost = next_url == reverse("support:open")
                return redirect(next_url if lost else "login-code")
            if step.after == flows.After.SIGNED_IN:
                if flows.turned_off_by_support(user):
                    messages.warning(
                        request,
                        format_html(
                            '{} <a href="{}">{}</a>',
                            _(
                                "Support turned off two-factor authentication for you, so "
                                "your password alone now opens your account."
                            ),
                            reverse("account:setup"),
                            _("Turn it on again with your new phone"),
                        ),
                    )
                return redirect(next_url)
            response = redirect(next_url)
            if step.trust_token is not None:
                trust.set_cookie(request, response, step.trust_token)
            return response
    return _login_page(request, form, next_url)


def _login_page(
    request: HttpRequest, form: LoginForm, next_url: str, passkey_error: str = ""
) -> HttpResponse:
    passkeys = flows.keys_usable_here(request)
    if not passkeys:  # no passkey in the e-mail field's autofill either
        form.fields["email"].widget.attrs["autocomplete"] = "username"
    context = {
        "form": form,
        "next": next_url,
        "passkeys": passkeys,
        "passkey_error": passkey_error,
        "errors": [passkey_error] if passkey_error else [],
    }
    return render(request, "accounts/login.html", context)


class _NoCredential(KeyfobError):
    code = "no_credential"


@require_POST
def passkey_options_view(request: HttpRequest) -> HttpResponse:
    """The options for a sign-in with a passkey (``navigator.credentials.get()``), for
    whoever asks: no account is named, the key will say whose it is. A POST, since it writes
    the session's challenge."""
    try:
        options = flows.begin(request, Purpose.PASSWORDLESS)
    except flows.WrongHost as exc:
        return JsonResponse({"error": passkey_error(exc)}, status=400)
    except Throttled as exc:
        return JsonResponse({"error": passkey_error(exc)}, status=429)
    return JsonResponse(options)


@require_http_methods(["GET", "POST"])
def passkey_signin_view(request: HttpRequest) -> HttpResponse:
    """A sign-in with a passkey and no password: the key, discoverable and verifying its
    user, is both factors (and a phishing-resistant sign-in, for the staff rule)."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    if request.method == "GET":  # the page is the sign-in form's
        return redirect(f"{reverse('login')}?{urlencode({'next': next_url})}")
    form = CredentialForm(request.POST)
    try:
        if not form.is_valid():
            raise _NoCredential("no credential, or far too long")
        key = flows.verify_key(
            request,
            Purpose.PASSWORDLESS,
            form.cleaned_data["credential"],
            Context.from_request(request),
        )
    except KeyfobError as exc:
        return _login_page(request, LoginForm(), next_url, passkey_error(exc))
    flows.after_passkey(request, key)
    recovery_left_message(request, key.user, used=False)
    return redirect(next_url)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, _("You are signed out."))
    return redirect("login")


@require_http_methods(["GET", "POST"])
def signin_code_view(request: HttpRequest) -> HttpResponse:
    found = account_flows.pending(request, app_settings.pending_signin_seconds)
    if found is None:
        if request.method == "POST" or account_flows.PENDING_KEY in request.session:
            messages.error(request, _("Your sign-in took too long. Please start again."))
        return redirect("login")
    user, next_url = found
    # A security key first, when the account has one; an app's code or a recovery code
    # on request (links on the page).
    choice = second_factor_choice(request, user)
    form = SignInCodeForm(request.POST if request.method == "POST" else None, way=choice.way)
    if request.method == "POST" and form.is_valid():
        context = Context.from_request(request)
        made: Made | None
        if choice.way == Way.KEY:
            key = check_key(request, user, form, Purpose.SIGNIN, context)
            made = flows.key_proof(key) if key is not None else None
        else:
            made = check_second_factor(user, form, context, after_password=True)
        if made is not None:
            token = flows.after_second_factor(
                request, user, made, trust=bool(form.cleaned_data.get("trust"))
            )
            recovery_left_message(request, user, used=choice.way == Way.RECOVERY)
            response = redirect(safe_next(request, next_url))
            if token is not None:
                trust.set_cookie(request, response, token)
            return response
    return render(
        request,
        "twofactor/signin_code.html",
        {
            "form": form,
            "choice": choice,
            "recovery": choice.way == Way.RECOVERY,
            "support_email": app_settings.support_email,
        },
    )


@require_POST
def signin_key_options_view(request: HttpRequest) -> HttpResponse:
    """The options of the security key ceremony at the code step (JSON, for webauthn.js),
    for the account whose password was just typed; the pending marker's rules apply."""
    found = account_flows.pending(request, app_settings.pending_signin_seconds)
    if found is None:
        return key_options_refused(_("Your sign-in took too long. Please start again."))
    return key_options(request, Purpose.SIGNIN, found[0])


@login_required
@require_http_methods(["GET", "POST"])
def reauth_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    second_factor = flows.has_2fa(user)
    # ?need=key: what asked for this confirmation needs a security key or passkey (an app
    # that asked for a phishing-resistant sign-in); the staff rule always does.
    key_only = flows.only_keys_confirm(user) or request.GET.get("need") == "key"
    choice = second_factor_choice(request, user, key_only=key_only) if second_factor else None
    way = choice.way if choice is not None else None
    form = ReauthForm(
        request.POST if request.method == "POST" else None,
        second_factor=second_factor,
        way=way or Way.CODE,
    )
    if request.method == "POST" and form.is_valid():
        context = Context.from_request(request)
        if password_checked(request, user, form):
            made: Made | None = None
            if way == Way.KEY:
                key = check_key(request, user, form, Purpose.REAUTH, context)
                made = flows.key_proof(key) if key is not None else None
            elif second_factor:
                made = check_second_factor(user, form, context, after_password=False)
            if made is not None or not second_factor:
                flows.after_confirmation(request, made)
                if way == Way.RECOVERY:
                    recovery_left_message(request, user)
                return redirect(next_url)
    return render(
        request,
        "twofactor/reauth.html",
        {
            "form": form,
            "next": next_url,
            "choice": choice,
            "recovery": way == Way.RECOVERY,
            "second_factor": second_factor,
        },
    )


@login_required
@require_POST
def reauth_key_options_view(request: HttpRequest) -> HttpResponse:
    """The options of the security key ceremony of "Confirm it is you" (JSON, for
    webauthn.js). It writes only a challenge for the account's own confirmation."""
    user = request.user
    assert isinstance(user, User)
    return key_options(request, Purpose.REAUTH, user)
