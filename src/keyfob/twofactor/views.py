"""Account → Security and re-authentication. Views handle HTTP; flows do the work."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from keyfob import otp, qr
from keyfob.accounts import flows as account_flows
from keyfob.accounts.decorators import reauth_required
from keyfob.accounts.forms import PhoneForm
from keyfob.accounts.models import User
from keyfob.accounts.text import wait_text
from keyfob.audit.events import Context
from keyfob.audit.models import Channel as EventChannel
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.audit.useragent import describe
from keyfob.core import clock, keyring
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.forms import (
    AddKeyForm,
    AuthenticatorNameForm,
    KeyNameForm,
    ReauthForm,
    SavedCodesForm,
    SetupCodeForm,
    SetupKindForm,
    SignInCodeForm,
    Way,
)
from keyfob.twofactor.models import Authenticator, Kind, Purpose, SecurityKey

KNOWN_APPS = ["FreeOTP", "Google Authenticator", "Aegis", "2FAS", "Ente Auth"]
FRESH_CODES_KEY = "keyfob.fresh_recovery_codes"
# Set when the person chose to turn 2FA on without giving a phone number.
NO_PHONE_KEY = "keyfob.setup_without_phone"
CODE_ERRORS = (InvalidCode, CodeReused, Throttled, flows.NotEnrolled)

# Sections that apps above twofactor add to the Security page from their AppConfig.ready()
# (api: the SSH logins), so that twofactor imports none of them. Each returns its HTML.
SECURITY_SECTIONS: list[Callable[[HttpRequest, User], str]] = []


def _wait(exc: KeyfobError) -> str:
    retry_after = exc.retry_after if isinstance(exc, Throttled) else 0
    return _("Too many failed attempts. Try again in %(wait)s.") % {"wait": wait_text(retry_after)}


def _clock_drift(exc: KeyfobError) -> str:
    seconds = exc.seconds if isinstance(exc, flows.ClockDrift) else 0
    minutes = max(1, round(abs(seconds) / 60))
    if seconds < 0:
        text = ngettext(
            "Your phone's clock seems to be about %(n)d minute slow.",
            "Your phone's clock seems to be about %(n)d minutes slow.",
            minutes,
        )
        advice = _("Set its date and time to update automatically, then try a new code.")
    else:
        text = ngettext(
            "Your phone's clock seems to be about %(n)d minute fast.",
            "Your phone's clock seems to be about %(n)d minutes fast.",
            minutes,
        )
        # The code it showed is spent, with every code before it (else this answer would
        # tell a guesser which code to type later): say how long until one works again.
        advice = ngettext(
            "Set its date and time to update automatically; its codes work again in about "
            "%(n)d minute.",
            "Set its date and time to update automatically; its codes work again in about "
            "%(n)d minutes.",
            minutes,
        ) % {"n": minutes}
    return (text % {"n": minutes}) + " " + advice


# What to tell a person whose code was refused, and what to do next, by the error's code
# (KeyfobError.code); a code not listed reads as a wrong code.
CODE_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    "throttled": _wait,
    "code_reused": lambda exc: _(
        "This code has already been used. Wait for the next code in your app."
    ),
    "clock_drift": _clock_drift,
    "not_enrolled": lambda exc: _("Two-factor authentication is not on for this account."),
    "invalid_code": lambda exc: _(
        "This code is not right. Check the code for this account in your app."
    ),
}


def _not_a_recovery_code(exc: KeyfobError) -> str:
    return _("This is not one of your recovery codes.")


# The same for a recovery code typed instead.
RECOVERY_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    **CODE_MESSAGES,
    "code_reused": lambda exc: _("This recovery code has already been used. Each one works once."),
    "clock_drift": _not_a_recovery_code,
    "invalid_code": _not_a_recovery_code,
}


def code_error(
    exc: KeyfobError, table: dict[str, Callable[[KeyfobError], str]] = CODE_MESSAGES
) -> str:
    """What to tell a person whose code (or, with RECOVERY_MESSAGES, recovery code) was
    refused."""
    return table.get(exc.code, table["invalid_code"])(exc)


def _try_key_again(exc: KeyfobError) -> str:
    return _("That took too long, or the page was sent twice. Press the button to try again.")


def _wrong_host(exc: KeyfobError) -> str:
    return _(
        "Security keys cannot be used at this address of the site. Open the site at its "
        "usual address."
    )


# What to tell a person whose security key or passkey was refused (at sign-in or at
# "Confirm it is you"), by the error's code; a code not listed reads as a refused key.
KEY_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    "throttled": _wait,
    "key_refused": lambda exc: _(
        "This security key was not accepted. Use a security key or passkey you added to "
        "this account, or another way below."
    ),
    "key_cloned": lambda exc: _(
        "This security key was refused: its answer shows it may have been copied. We sent "
        "you an e-mail about it. Use another way below, then remove the key from Account → "
        "Security."
    ),
    "challenge_expired": _try_key_again,
    "code_reused": _try_key_again,
    "not_enrolled": lambda exc: _("This account has no security key. Use another way below."),
    "wrong_host": _wrong_host,
}

# The same when adding a key.
ADD_KEY_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    "key_refused": lambda exc: _(
        "The answer from your security key could not be checked, or this key is already "
        "added. Press the button to try again, or use another key."
    ),
    "challenge_expired": _try_key_again,
    "wrong_host": _wrong_host,
    "too_many_keys": lambda exc: (
        _("An account has at most %(n)d security keys. Remove one you no longer use first.")
        % {"n": app_settings.max_security_keys}
    ),
}


# What each ceremony may refuse with, to be told with the tables above (anything else, such
# as ReauthRequired, goes on to its own handler).
KEY_ERRORS = (
    flows.KeyRefused,
    flows.ChallengeExpired,
    flows.WrongHost,
    flows.NotEnrolled,
    CodeReused,
    Throttled,
)
ADD_KEY_ERRORS = (flows.KeyRefused, flows.ChallengeExpired, flows.WrongHost, flows.TooManyKeys)


def key_error(exc: KeyfobError, table: dict[str, Callable[[KeyfobError], str]]) -> str:
    """What to tell a person whose security key was refused (``table``: KEY_MESSAGES or
    ADD_KEY_MESSAGES)."""
    return table.get(exc.code, table["key_refused"])(exc)


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
    asked (``?recovery=1``). With ``key_only`` (the account has a key), the key alone."""
    has_keys = SecurityKey.objects.filter(user=user).exists()
    has_apps = Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()
    if key_only and has_keys:
        return SecondFactorChoice(Way.KEY, has_keys, has_apps, key_only=True)
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
) -> dict[str, Any] | None:
    """Check the form's code or recovery code; put the error on the form. If accepted,
    return what the sign-in's event says of it: the factor, and the authenticator app the
    code was from (the activity says which)."""
    field = "recovery_code" if form.recovery else "code"
    try:
        if form.recovery:
            flows.use_recovery_code(user, form.cleaned_data[field], context)
            return {"second_factor": "recovery"}
        auth = flows.verify_code(
            user, form.cleaned_data[field], context, after_password=after_password
        )
    except CODE_ERRORS as exc:
        form.add_error(
            field, code_error(exc, RECOVERY_MESSAGES if form.recovery else CODE_MESSAGES)
        )
        return None
    return {"second_factor": "code", "authenticator": auth.label}


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


def recovery_left_message(request: HttpRequest, user: User) -> None:
    left = flows.recovery_codes_left(user)
    text = ngettext(
        "You have %(n)d recovery code left.", "You have %(n)d recovery codes left.", left
    ) % {"n": left}
    if left <= 2:
        text += " " + _("Make a new set from Account → Security.")
    messages.warning(request, text)


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


# What the activity list marks as a failed attempt (in words, not only in colour).
FAILED_KINDS = frozenset(
    {
        EventKind.PASSWORD_WRONG,
        EventKind.CODE_WRONG,
        EventKind.CODE_REUSED,
        EventKind.THROTTLED,
        EventKind.RECOVERY_WRONG,
        EventKind.SUPPORT_CODE_WRONG,
        EventKind.KEY_WRONG,
        EventKind.KEY_CLONE,
    }
)


def _ago(at: datetime) -> str:
    """ "5 minutes ago", from Keyfob's clock (tests can set it), in the page's language."""
    if clock.now() - at < timedelta(minutes=1):
        return _("just now")
    return _("%(time)s ago") % {"time": timesince(at, now=clock.now(), depth=1)}


def activity_rows(request: HttpRequest, user: User) -> list[dict[str, object]]:
    """The last 50 events, each with its browser's name, how long ago it was, whether it
    was a failed attempt, and whether it came from this browser: the same browser string
    from the same address (a hint for the reader, never a security decision)."""
    here = Context.from_request(request)
    return [
        {
            "event": e,
            "browser": describe(e.user_agent),
            "ago": _ago(e.at),
            "failed": e.kind in FAILED_KINDS,
            "this_browser": e.channel == EventChannel.WEB
            and bool(e.user_agent)
            and e.user_agent == here.user_agent
            and e.address == here.address,
        }
        for e in SecurityEvent.objects.filter(user=user)[:50]
    ]


@dataclass(frozen=True)
class AuthenticatorRow:
    """One line of the Security page's list: an authenticator app or a security key."""

    item: Authenticator | SecurityKey
    added: datetime

    @property
    def is_key(self) -> bool:
        return isinstance(self.item, SecurityKey)


def authenticator_rows(user: User) -> list[AuthenticatorRow]:
    """The account's authenticator apps and security keys, in the order they were added."""
    rows = [
        AuthenticatorRow(a, a.confirmed_at or a.created_at)
        for a in flows.confirmed_authenticators(user)
    ]
    rows += [AuthenticatorRow(k, k.created_at) for k in flows.security_keys(user)]
    return sorted(rows, key=lambda r: (r.added, r.is_key, r.item.pk))


@login_required
def security_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    rows = authenticator_rows(user)
    first = rows[0] if rows else None  # 2FA is on since it was added
    left = flows.recovery_codes_left(user) if rows else 0
    context = {
        "first": first,
        "authenticators": rows,
        "has_keys": any(r.is_key for r in rows),
        "has_apps": any(not r.is_key for r in rows),
        "recovery_left": left,
        "recovery_low": first is not None and left <= 2,
        "browsers": flows.trusted_browsers(user),
        "events": activity_rows(request, user),
        # No zone in the profile: the page's script shows times in the browser's own zone.
        "browser_time_zone": not user.time_zone,
        # Each is its own template's output (a SafeString, so not escaped twice).
        "sections": [section(request, user) for section in SECURITY_SECTIONS],
    }
    return render(request, "twofactor/security.html", context)


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
                user, form.cleaned_data["code"], Context.from_request(request)
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
            # The confirmation before was made without the factor the account now has.
            account_flows.forget_recent_auth(request)
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


# Recovery codes are shown until the person says they saved them, for a few minutes at
# most (a session copied later must not read them). Meanwhile they sit in the session
# encrypted like any secret, so neither the sessions table nor a dump shows them.
def _hold_fresh_codes(request: HttpRequest, user: User, codes: list[str]) -> None:
    sealed = keyring.encrypt(json.dumps(codes).encode(), context=f"fresh-codes:{user.pk}")
    request.session[FRESH_CODES_KEY] = {"sealed": sealed, "at": clock.time()}


def _fresh_codes(request: HttpRequest, user: User) -> list[str] | None:
    held = request.session.get(FRESH_CODES_KEY)
    if not isinstance(held, dict) or not isinstance(held.get("sealed"), str):
        return None
    age = clock.time() - float(held.get("at", 0))
    if not 0 <= age <= app_settings.fresh_codes_seconds:
        request.session.pop(FRESH_CODES_KEY, None)
        return None
    try:
        codes = json.loads(keyring.decrypt(held["sealed"], context=f"fresh-codes:{user.pk}"))
    except (KeyfobError, ValueError):
        return None
    return [str(c) for c in codes] if isinstance(codes, list) else None


@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    codes = _fresh_codes(request, user)
    if codes is None:
        return redirect("account:security")
    form = SavedCodesForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        request.session.pop(FRESH_CODES_KEY, None)
        return redirect("account:security")
    context = {"codes": codes, "form": form, "today": clock.now()}
    return render(request, "twofactor/recovery_codes.html", context)


@login_required
def recovery_codes_download(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    codes = _fresh_codes(request, user)
    if codes is None:
        raise Http404
    lines = [
        _("%(site)s recovery codes for %(email)s")
        % {"site": app_settings.issuer, "email": user.email},
        _("Each code works once, instead of an authentication code."),
        "",
        *codes,
        "",
    ]
    response = HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="keyfob-recovery-codes.txt"'
    return response


# "Ask once": the password and code that "Confirm it is you" (reauth_required) has just
# taken are the proof these changes need; asking for a code again would only be refused,
# its step being spent.
@reauth_required
@require_http_methods(["GET", "POST"])
def regenerate_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not flows.has_2fa(user):
        return redirect("account:security")
    if request.method == "POST":
        codes = flows.regenerate_recovery_codes(user, Context.from_request(request))
        _hold_fresh_codes(request, user, codes)
        messages.success(request, _("Your new recovery codes replace the old ones."))
        return redirect("account:recovery-codes")
    return render(request, "twofactor/regenerate.html")


@reauth_required
@require_http_methods(["GET", "POST"])
def disable_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not flows.has_2fa(user):
        return redirect("account:security")
    if request.method == "POST":
        flows.disable(user, Context.from_request(request))
        messages.success(request, _("Two-factor authentication is off."))
        return redirect("account:security")
    return render(request, "twofactor/disable.html")


@require_POST
@reauth_required
def revoke_browser_view(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    user = _user(request)
    count = flows.revoke_trusted_browsers(user, Context.from_request(request), pk)
    messages.success(
        request,
        ngettext(
            "%(n)d browser is no longer trusted.", "%(n)d browsers are no longer trusted.", count
        )
        % {"n": count},
    )
    return redirect("account:security")


_Item = TypeVar("_Item", Authenticator, SecurityKey)


def _own(rows: list[AuthenticatorRow], kind: type[_Item], pk: int) -> _Item:
    """The account's app or key (``kind``) numbered ``pk``, among its ``rows``
    (:func:`authenticator_rows`); 404 for any other (another account's says nothing of its
    existence)."""
    found = next((r.item for r in rows if isinstance(r.item, kind) and r.item.pk == pk), None)
    if found is None:
        raise Http404
    return found


def _rename_page(request: HttpRequest, form: forms.Form, heading: str, label: str) -> HttpResponse:
    """The page that renames an app or a key (one template: only the heading differs)."""
    return render(
        request, "twofactor/rename.html", {"form": form, "heading": heading, "label": label}
    )


@reauth_required
@require_http_methods(["GET", "POST"])
def rename_authenticator_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    auth = _own(authenticator_rows(user), Authenticator, pk)
    form = AuthenticatorNameForm(
        request.POST if request.method == "POST" else None, initial={"name": auth.name}
    )
    if request.method == "POST" and form.is_valid():
        flows.rename_authenticator(
            user, auth.pk, form.cleaned_data["name"], Context.from_request(request)
        )
        messages.success(request, _("The authenticator app is renamed."))
        return redirect("account:security")
    return _rename_page(request, form, _("Rename an authenticator app"), auth.label)


@reauth_required
@require_http_methods(["GET", "POST"])
def remove_authenticator_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Removing one app. The last one is not removed here: that is turning 2FA off, whose
    own page says what it means."""
    user = _user(request)
    rows = authenticator_rows(user)
    auth = _own(rows, Authenticator, pk)
    if len(rows) == 1:  # of any kind: apps and keys
        return redirect("account:disable")
    if request.method == "POST":
        try:
            name = flows.remove_authenticator(user, auth.pk, Context.from_request(request))
        except flows.LastAuthenticator:  # another tab removed the others meanwhile
            return redirect("account:disable")
        except Authenticator.DoesNotExist:
            raise Http404 from None
        messages.success(
            request, _("The authenticator app “%(name)s” is removed.") % {"name": name}
        )
        return redirect("account:security")
    return render(request, "twofactor/remove.html", {"authenticator": auth})


def _two_factor_needs_phone(request: HttpRequest, user: User) -> bool:
    """Turning 2FA on asks first for the phone number support would call (setup_view)."""
    return not flows.has_2fa(user) and not user.phone and not request.session.get(NO_PHONE_KEY)


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
    if _two_factor_needs_phone(request, user):
        return redirect("account:setup-phone")
    if len(flows.security_keys(user)) >= app_settings.max_security_keys:
        return _too_many_keys(request)
    form = AddKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        name = form.cleaned_data["name"]
        try:
            codes = flows.register_key(
                request, user, form.cleaned_data["credential"], name, Context.from_request(request)
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
            account_flows.forget_recent_auth(request)
            _hold_fresh_codes(request, user, codes)
            messages.success(request, _("Two-factor authentication is on."))
            return redirect("account:recovery-codes")
    return render(request, "twofactor/add_key.html", {"form": form, "adding": adding})


@require_POST
@reauth_required
def add_key_options_view(request: HttpRequest) -> HttpResponse:
    """The options of the ceremony that adds a key (JSON, for webauthn.js)."""
    return key_options(request, Purpose.REGISTER, _user(request))


@reauth_required
@require_http_methods(["GET", "POST"])
def rename_key_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    key = _own(authenticator_rows(user), SecurityKey, pk)
    form = KeyNameForm(
        request.POST if request.method == "POST" else None, initial={"name": key.name}
    )
    if request.method == "POST" and form.is_valid():
        try:
            flows.rename_key(user, key.pk, form.cleaned_data["name"], Context.from_request(request))
        except SecurityKey.DoesNotExist:  # removed in another tab meanwhile
            raise Http404 from None
        messages.success(request, _("The security key is renamed."))
        return redirect("account:security")
    return _rename_page(request, form, _("Rename a security key"), key.label)


@reauth_required
@require_http_methods(["GET", "POST"])
def remove_key_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Removing one key. The account's last authenticator, of any kind, is not removed
    here: that is turning 2FA off, whose own page says what it means."""
    user = _user(request)
    rows = authenticator_rows(user)
    key = _own(rows, SecurityKey, pk)
    if len(rows) == 1:
        return redirect("account:disable")
    if request.method == "POST":
        try:
            name = flows.remove_key(user, key.pk, Context.from_request(request))
        except flows.LastAuthenticator:  # another tab removed the others meanwhile
            return redirect("account:disable")
        except SecurityKey.DoesNotExist:
            raise Http404 from None
        messages.success(request, _("The security key “%(name)s” is removed.") % {"name": name})
        return redirect("account:security")
    return render(request, "twofactor/remove_key.html", {"key": key})
