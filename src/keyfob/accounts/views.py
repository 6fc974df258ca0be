"""Account → Profile: the profile, the password and the e-mail address; and, signed out,
the help for who cannot sign in, with its password reset."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from keyfob.accounts import flows, notice_address
from keyfob.accounts.addresses import normal_email
from keyfob.accounts.decorators import (
    applies_carried_change,
    confirm_then_apply,
    reauth_required,
)
from keyfob.accounts.errors import AccountError
from keyfob.accounts.forms import (
    EmailChangeForm,
    EmailCodeForm,
    NewPasswordForm,
    NoticeEmailCodeForm,
    NoticeEmailForm,
    ProfileForm,
    ResetCodeForm,
    ResetRequestForm,
)
from keyfob.accounts.messages import FIELD_REFUSALS, refusal
from keyfob.accounts.models import User
from keyfob.otp import Throttled


@login_required
@applies_carried_change
@require_http_methods(["GET", "POST"])
def profile_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = ProfileForm(request.POST if request.method == "POST" else None, instance=user)
    if request.method == "POST" and form.is_valid():
        try:
            flows.update_profile(request, form.save(commit=False), list(form.changed_data))
        except flows.ReauthRequired as exc:
            # Nothing was saved yet: what was sent is kept, and saved once confirmed.
            messages.info(request, refusal(exc))
            return confirm_then_apply(request)
        if user.language:
            translation.activate(user.language)  # said in the language just chosen
        messages.success(request, _("Your profile is saved."))
        response = redirect("account:profile")
        if user.language:
            response.set_cookie(
                "django_language", user.language, samesite="Lax", secure=request.is_secure()
            )
        return response
    return render(request, "accounts/profile.html", {"form": form})


@reauth_required
@require_http_methods(["GET", "POST"])
def password_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    # No "current password" field: reauth_required has just asked for it (and the code),
    # through the throttled check, and a second unthrottled check would be an oracle.
    form = NewPasswordForm(request.POST if request.method == "POST" else None, user=user)
    if request.method == "POST" and form.is_valid():
        flows.change_password(request, user, form.cleaned_data["new_password1"])
        messages.success(request, _("Your password is changed."))
        return redirect("account:profile")
    return render(request, "accounts/password.html", {"form": form})


@reauth_required
@require_http_methods(["GET", "POST"])
def email_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    form = EmailChangeForm(request.POST if request.method == "POST" else None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            flows.start_email_change(request, user, form.cleaned_data["email"])
        except flows.EmailChangeLimit as exc:
            form.add_error("email", refusal(exc))
        else:
            return redirect("account:email-confirm")
    return render(request, "accounts/email.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def email_confirm_view(request: HttpRequest) -> HttpResponse:
    """The code e-mailed to the new address, typed back: only then does the address change.

    The change itself was asked for after a fresh sign-in (``email_view``); typing the code
    proves the new mailbox, so a slow e-mail does not send the person through it again.
    """
    user = request.user
    assert isinstance(user, User)
    new_email = flows.pending_email_change(request)
    if new_email is None:
        messages.info(request, _("There is no e-mail address waiting to be confirmed."))
        return redirect("account:email")
    form = EmailCodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            flows.confirm_email_change(request, user, form.cleaned_data["code"])
        except AccountError as exc:
            if exc.code in FIELD_REFUSALS:
                form.add_error("code", refusal(exc))
            else:  # nothing left to confirm, or the address is another account's
                messages.error(request, refusal(exc))
                return redirect("account:email")
        else:
            messages.success(request, _("Your e-mail address is changed."))
            return redirect("account:profile")
    context = {"form": form, "email": new_email, "minutes": flows.EMAIL_CODE_MINUTES}
    return render(request, "accounts/email_confirm.html", context)


# Cannot sign in ----------------------------------------------------------------------

# The address a reset code was asked for (not a secret: the page says where the code went).
RESET_EMAIL_KEY = "keyfob.reset_email"


@require_http_methods(["GET"])
def signin_help_view(request: HttpRequest) -> HttpResponse:
    """One page for both ways out: a forgotten password, a lost authenticator."""
    return render(request, "accounts/signin_help.html")


@require_http_methods(["GET", "POST"])
def reset_request_view(request: HttpRequest) -> HttpResponse:
    form = ResetRequestForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        email = normal_email(form.cleaned_data["email"])
        try:
            flows.start_password_reset(request, email)
        except Throttled as exc:
            form.add_error(None, refusal(exc))
        else:
            request.session[RESET_EMAIL_KEY] = email
            return redirect("password-reset-code")
    return render(request, "accounts/reset_request.html", {"form": form})


@require_http_methods(["GET", "POST"])
def reset_code_view(request: HttpRequest) -> HttpResponse:
    """The code from the e-mail and the new password. The same page whether an account
    uses the address or not: only the right code, from that mailbox, changes anything."""
    email = request.session.get(RESET_EMAIL_KEY)
    if not isinstance(email, str):
        return redirect("password-reset")
    form = ResetCodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            flows.finish_password_reset(
                request, email, form.cleaned_data["code"], form.cleaned_data["new_password1"]
            )
        except AccountError as exc:
            if exc.code in FIELD_REFUSALS:
                form.add_error("code", refusal(exc))
            else:  # nothing left to finish
                request.session.pop(RESET_EMAIL_KEY, None)
                messages.error(request, refusal(exc))
                return redirect("password-reset")
        except ValidationError as exc:  # Django's password rules, about this account
            form.add_error("new_password1", exc)
        else:
            request.session.pop(RESET_EMAIL_KEY, None)
            messages.success(request, _("Your password is changed. Sign in with it."))
            return redirect("login")
    context = {"form": form, "email": email, "minutes": flows.RESET_CODE_MINUTES}
    return render(request, "accounts/reset_code.html", context)


# A second address for security notices (reached from Account → Security) ---------------


@reauth_required
@require_http_methods(["GET", "POST"])
def notice_email_view(request: HttpRequest) -> HttpResponse:
    """Add or change the second address: a code goes to it first."""
    user = request.user
    assert isinstance(user, User)
    form = NoticeEmailForm(request.POST if request.method == "POST" else None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            notice_address.start(request, user, form.cleaned_data["email"])
        except notice_address.NoticeEmailLimit:
            form.add_error(
                "email",
                _("You have asked for too many confirmation e-mails today. Try again tomorrow."),
            )
        except notice_address.SameAsSignIn:
            form.add_error("email", _("This is your sign-in address: choose another address."))
        else:
            return redirect("account:notice-email-confirm")
    return render(request, "accounts/notice_email.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def notice_email_confirm_view(request: HttpRequest) -> HttpResponse:
    """The code e-mailed to the second address, typed back: only then is it used."""
    user = request.user
    assert isinstance(user, User)
    waiting = notice_address.pending(user)
    if waiting is None:
        messages.info(request, _("There is no address waiting to be confirmed."))
        return redirect("account:security")
    form = NoticeEmailCodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            notice_address.confirm(request, user, form.cleaned_data["code"])
        except notice_address.WrongNoticeCode as exc:
            form.add_error(
                "code",
                ngettext(
                    "That is not the code we sent. %(left)d try left.",
                    "That is not the code we sent. %(left)d tries left.",
                    exc.left,
                )
                % {"left": exc.left},
            )
        except notice_address.NoticeEmailLost:
            messages.error(request, _("This code no longer works. Ask for a new one."))
            return redirect("account:notice-email")
        else:
            messages.success(
                request, _("%(email)s now receives your security notices too.") % {"email": waiting}
            )
            return redirect("account:security")
    context = {"form": form, "email": waiting, "minutes": notice_address.CODE_MINUTES}
    return render(request, "accounts/notice_email_confirm.html", context)


@reauth_required
@require_POST
def notice_email_remove_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if user.notice_email:
        notice_address.remove(request, user)
        messages.success(request, _("The second address no longer receives security notices."))
    return redirect("account:security")
