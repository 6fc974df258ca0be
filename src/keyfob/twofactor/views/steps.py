"""What every page that asks for a second factor shares (the code step, "Confirm it is you"):
which way to ask, checking a code or a key and putting the refusal on the form."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from keyfob.accounts import flows as account_flows
from keyfob.accounts.models import User
from keyfob.accounts.proofs import Made
from keyfob.audit.events import Context
from keyfob.otp import Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.forms import (
    ReauthForm,
    SignInCodeForm,
    Way,
)
from keyfob.twofactor.messages import (
    ADD_KEY_ERRORS,
    ADD_KEY_MESSAGES,
    CODE_ERRORS,
    CODE_MESSAGES,
    KEY_ERRORS,
    KEY_MESSAGES,
    RECOVERY_MESSAGES,
    code_error,
    key_error,
)
from keyfob.twofactor.models import Authenticator, Purpose, SecurityKey


@dataclass(frozen=True)
class SecondFactorChoice:
    """What a page that asks for the second factor offers: ``way`` is the one it asks for
    now, the others are links."""

    way: Way
    has_keys: bool
    has_apps: bool
    key_only: bool = False  # no other way is offered (staff, "Confirm it is you")


def second_factor_choice(
    request: HttpRequest, user: User, *, key_only: bool = False
) -> SecondFactorChoice:
    """A security key first when the account has one (a phishing page cannot relay it);
    an app's code when asked (``?app=1``) or when there is no key; a recovery code when
    asked (``?recovery=1``). With ``key_only`` (the account has a key), the key alone. At a
    host where no key can be used, an account that also has an app is asked for its code."""
    has_keys = SecurityKey.objects.filter(user=user).exists()
    has_apps = Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()
    if key_only and has_keys:
        return SecondFactorChoice(Way.KEY, has_keys, has_apps, key_only=True)
    if has_keys and has_apps and not flows.keys_usable_here(request):
        # At a host outside the relying party id (an IP address) no key can answer: the
        # app's code is asked, and the key is not offered. (Never with ``key_only``: there
        # a code would pass the staff rule.)
        has_keys = False
    if request.GET.get("recovery") == "1":
        way = Way.RECOVERY
    elif not has_keys or (has_apps and request.GET.get("app") == "1"):
        way = Way.CODE
    else:
        way = Way.KEY
    return SecondFactorChoice(way, has_keys, has_apps)


def key_options(request: HttpRequest, purpose: Purpose, user: User) -> JsonResponse:
    """The options of a WebAuthn ceremony as JSON for webauthn.js, or, refused, an error
    text (the page's script says only that the key could not be used)."""
    try:
        return JsonResponse(flows.begin(request, purpose, user))
    except (*KEY_ERRORS, *ADD_KEY_ERRORS) as exc:
        table = ADD_KEY_MESSAGES if purpose == Purpose.REGISTER else KEY_MESSAGES
        return key_options_refused(key_error(exc, table))


def key_options_refused(text: str) -> JsonResponse:
    return JsonResponse({"error": text}, status=400)


def check_key(
    request: HttpRequest,
    user: User,
    form: SignInCodeForm | ReauthForm,
    purpose: Purpose,
    context: Context,
) -> SecurityKey | None:
    """Check the form's security key answer for ``user``; put the error on the form. Return
    the key that signed it, if accepted."""
    try:
        return flows.verify_key(
            request, purpose, form.cleaned_data["credential"], context, user=user
        )
    except KEY_ERRORS as exc:
        form.add_error(None, key_error(exc, KEY_MESSAGES))
        return None


def check_second_factor(
    user: User,
    form: SignInCodeForm | ReauthForm,
    context: Context,
    *,
    after_password: bool,
) -> Made | None:
    """Check the form's code or recovery code; put the error on the form. If accepted,
    return the proof it made (the authenticator app the code was from, if one)."""
    field = "recovery_code" if form.recovery else "code"
    try:
        if form.recovery:
            flows.use_recovery_code(user, form.cleaned_data[field], context)
            return flows.RECOVERY_PROOF
        auth = flows.verify_code(
            user, form.cleaned_data[field], context, after_password=after_password
        )
    except CODE_ERRORS as exc:
        form.add_error(
            field, code_error(exc, RECOVERY_MESSAGES if form.recovery else CODE_MESSAGES)
        )
        return None
    return flows.app_proof(auth)


def password_checked(request: HttpRequest, user: User, form: ReauthForm) -> bool:
    """Check the form's password for ``user`` (throttled); put the error on the form."""
    try:
        account_flows.check_password(request, user.email, form.cleaned_data["password"])
    except account_flows.InvalidCredentials:
        form.add_error("password", _("This password is not right."))
    except Throttled as exc:
        form.add_error("password", code_error(exc))
    else:
        return True
    return False


def recovery_left_message(request: HttpRequest, user: User, *, used: bool = True) -> None:
    """Say how many recovery codes are left: after one was ``used`` here, always; after a
    sign-in with another factor, only when few are left (one may have been used over SSH or
    the API, which cannot show this), asking for a new set."""
    left = flows.recovery_codes_left(user)
    if not used and (left > flows.RECOVERY_LOW or not flows.has_2fa(user)):
        return
    text = ngettext(
        "You have %(n)d recovery code left.", "You have %(n)d recovery codes left.", left
    ) % {"n": left}
    if left <= flows.RECOVERY_LOW:
        text += " " + _("Make a new set from Account → Security.")
    messages.warning(request, text)


def signed_in_user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user
