"""Account → Security: the overview (authenticators, recovery codes, trusted browsers,
activity), renaming and removing an app or a key, recovery codes, trusted browsers and
turning 2FA off."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from keyfob.accounts import sessions
from keyfob.accounts.decorators import reauth_required
from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.audit.models import Channel as EventChannel
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.audit.useragent import describe
from keyfob.core import clock, keyring
from keyfob.otp import KeyfobError
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.forms import (
    AuthenticatorNameForm,
    KeyNameForm,
    SavedCodesForm,
)
from keyfob.twofactor.messages import family_texts
from keyfob.twofactor.models import Authenticator, SecurityKey
from keyfob.twofactor.views.steps import signed_in_user as _user

FRESH_CODES_KEY = "keyfob.fresh_recovery_codes"
# Where "I have saved these codes" leads, when not to Security (a path checked when set).
NEXT_AFTER_CODES_KEY = "keyfob.next_after_codes"

# Sections that apps above twofactor add to the Security page from their AppConfig.ready()
# (api: the SSH logins), so that twofactor imports none of them. Each returns its HTML.
SECURITY_SECTIONS: list[Callable[[HttpRequest, User], str]] = []


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
        "recovery_low": first is not None and left <= flows.RECOVERY_LOW,
        "browsers": flows.trusted_browsers(user),
        "events": activity_rows(request, user),
        # No zone in the profile: the page's script shows times in the browser's own zone.
        "browser_time_zone": not user.time_zone,
        # Each is its own template's output (a SafeString, so not escaped twice).
        "sections": [section(request, user) for section in SECURITY_SECTIONS],
        "sessions": sessions.signed_in_sessions(request, user),
    }
    return render(request, "twofactor/security.html", context)


# Recovery codes are shown until the person says they saved them, for a few minutes at
# most (a session copied later must not read them). Meanwhile they sit in the session
# encrypted like any secret, so neither the sessions table nor a dump shows them.
def _hold_fresh_codes(request: HttpRequest, user: User, codes: list[str]) -> None:
    sealed = keyring.encrypt(json.dumps(codes).encode(), context=f"fresh-codes:{user.pk}")
    request.session[FRESH_CODES_KEY] = {"sealed": sealed, "at": clock.time()}
    request.session.pop(NEXT_AFTER_CODES_KEY, None)  # a caller going on elsewhere sets it after


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
        # A staff member's first key (staff_key_view): on to the staff page they asked for.
        after = request.session.pop(NEXT_AFTER_CODES_KEY, None)
        return redirect(after if isinstance(after, str) else "account:security")
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
        codes = flows.regenerate_recovery_codes(request, user, Context.from_request(request))
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
        flows.disable(request, user, Context.from_request(request))
        messages.success(request, _("Two-factor authentication is off."))
        return redirect("account:security")
    return render(request, "twofactor/disable.html")


# The guard outside: a press kept while its sender confirmed it is them comes back as a GET
# that the guard turns into the POST it was.
@reauth_required
@require_POST
def revoke_browser_view(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    user = _user(request)
    count = flows.revoke_trusted_browsers(request, user, Context.from_request(request), pk)
    messages.success(
        request,
        ngettext(
            "%(n)d browser is no longer trusted.", "%(n)d browsers are no longer trusted.", count
        )
        % {"n": count},
    )
    return redirect("account:security")


@require_POST
@reauth_required
def sign_out_session_view(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Sign out" one other session of the account, from the Security page."""
    try:
        browser = sessions.sign_out_session(request, _user(request), pk)
    except sessions.NoSuchSession:
        messages.info(request, _("That session had already ended."))
    else:
        messages.success(
            request,
            _("The session in %(browser)s is signed out.")
            % {"browser": browser or _("Unknown browser")},
        )
    return redirect("account:security")


@require_POST
@reauth_required
def sign_out_others_view(request: HttpRequest) -> HttpResponse:
    """ "Sign out everywhere else": every session of the account but this one."""
    count = sessions.sign_out_other_sessions(request, _user(request))
    messages.success(
        request,
        ngettext(
            "%(n)d other session is signed out.", "%(n)d other sessions are signed out.", count
        )
        % {"n": count},
    )
    return redirect("account:security")


def _own(
    rows: list[AuthenticatorRow], family: flows.Family, pk: int
) -> Authenticator | SecurityKey:
    """The account's app or key (``family``) numbered ``pk``, among its ``rows``
    (:func:`authenticator_rows`); 404 for any other (another account's says nothing of its
    existence)."""
    found = next(
        (r.item for r in rows if flows.family_of(r.item) == family and r.item.pk == pk), None
    )
    if found is None:
        raise Http404
    return found


# The name forms differ only in their label and help text.
_NAME_FORMS = {flows.Family.APP: AuthenticatorNameForm, flows.Family.KEY: KeyNameForm}


@reauth_required
@require_http_methods(["GET", "POST"])
def rename_view(request: HttpRequest, family: flows.Family, pk: int) -> HttpResponse:
    """Renaming one app or key (``family``; its URLs under apps/ and keys/ both lead here).
    The flow finds it, locked: another account's, or one removed meanwhile, is a 404."""
    user = _user(request)
    texts = family_texts(family)
    form_class = _NAME_FORMS[family]
    form = form_class(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            flows.rename(user, family, pk, form.cleaned_data["name"], Context.from_request(request))
        except flows.UnknownAuthenticator:
            raise Http404 from None
        messages.success(request, texts.renamed)
        return redirect("account:security")
    item = _own(authenticator_rows(user), family, pk)
    if not form.is_bound:
        form = form_class(initial={"name": item.name})
    context = {"form": form, "heading": texts.rename_heading, "label": item.display_name}
    return render(request, "twofactor/rename.html", context)


@reauth_required
@require_http_methods(["GET", "POST"])
def remove_view(request: HttpRequest, family: flows.Family, pk: int) -> HttpResponse:
    """Removing one app or key (``family``). The account's last authenticator, of any kind,
    is not removed here: that is turning 2FA off, whose own page says what it means."""
    user = _user(request)
    rows = authenticator_rows(user)
    item = _own(rows, family, pk)
    if len(rows) == 1:
        return redirect("account:disable")
    if request.method == "POST":
        try:
            removed = flows.remove(request, user, family, item.pk, Context.from_request(request))
        except flows.LastAuthenticator:  # another tab removed the others meanwhile
            return redirect("account:disable")
        except flows.UnknownAuthenticator:  # removed in another tab meanwhile
            raise Http404 from None
        name = removed.display_name
        messages.success(request, family_texts(family).removed % {"name": name})
        return redirect("account:security")
    context = {"item": item, "is_key": family == flows.Family.KEY}
    return render(request, "twofactor/remove.html", context)
