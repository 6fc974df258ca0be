"""A guard for views: a recent re-authentication, and the change it held back."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from keyfob.accounts import flows
from keyfob.accounts.app_settings import app_settings
from keyfob.core import clock

View = Callable[..., HttpResponse]

# A form sent without a recent confirmation: what it said, kept in the session while the
# person confirms it is them, then sent again (applied) when they come back. One at a time.
CARRIED_KEY = "keyfob.carried_change"
# The query parameter that brings the person back from "Confirm it is you" to apply it.
CARRIED_PARAM = "carried"
# Never carried through the session: a form holding one of these (a new password, a code,
# a key's answer) is not kept; the person types it again after the confirmation.
_SECRET_FIELDS = ("password", "code", "credential", "secret", "token")
_NOT_CARRIED = {"csrfmiddlewaretoken", "next"}


def reauth_required(view: View) -> View:
    """Ask for the password (and a code, with 2FA) again unless given in the last minutes.

    A flow raising :class:`~keyfob.accounts.flows.ReauthRequired` (the window ran out
    between the guard and the change) is answered the same way.

    The person comes back to the page they asked for once done (``account:reauth``, whose
    page asks for whatever factors the account has); a form they had sent is applied then
    (:func:`confirm_then_apply`), unless it held a secret.
    """

    @login_required
    @applies_carried_change
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if flows.recent_auth(request, app_settings.reauth_seconds):
            try:
                return view(request, *args, **kwargs)
            except flows.ReauthRequired:
                pass
        return confirm_then_apply(request)

    return wrapper


def reauth_redirect(back: str) -> HttpResponse:
    """To "Confirm it is you", then back to ``back`` (a path on this site)."""
    return redirect(f"{reverse('account:reauth')}?{urlencode({'next': back})}")


def _has_secret(name: str) -> bool:
    return any(word in name.lower() for word in _SECRET_FIELDS)


def confirm_then_apply(request: HttpRequest) -> HttpResponse:
    """To "Confirm it is you", then back here, where what was sent is applied.

    A GET comes back to the same page. A form comes back to its own address with a
    one-time ``carried`` number, which :func:`applies_carried_change` answers by sending
    the kept form again once the confirmation is recent. A form holding a secret (a field
    named like a password, code or key answer) is not kept: the person comes back to the
    page and types it again (a secret is never written into the session). A script's
    request (JSON) goes back to the Security page, as before.
    """
    if request.method == "GET":
        return reauth_redirect(request.get_full_path())
    if "application/json" in request.headers.get("Accept", ""):
        return reauth_redirect(reverse("account:security"))
    fields = [(k, v) for k, v in request.POST.lists() if k not in _NOT_CARRIED]
    if any(_has_secret(name) and any(values) for name, values in fields):
        request.session.pop(CARRIED_KEY, None)
        messages.info(
            request,
            _(
                "For your safety, what you typed is not kept while you confirm it is you. "
                "Type it again afterwards."
            ),
        )
        return reauth_redirect(request.path)
    nonce = secrets.token_urlsafe(12)
    request.session[CARRIED_KEY] = {
        "nonce": nonce,
        "path": request.path,
        "uid": getattr(request.user, "pk", None),
        "at": clock.time(),
        "data": fields,
    }
    return reauth_redirect(f"{request.path}?{urlencode({CARRIED_PARAM: nonce})}")


def _take_carried(request: HttpRequest) -> QueryDict | None:
    """The form kept for this page by :func:`confirm_then_apply`, once (None: none, another
    page's, another account's, too old, or not the one the link names)."""
    nonce = request.GET.get(CARRIED_PARAM)
    if request.method != "GET" or not nonce:
        return None
    kept: Any = request.session.pop(CARRIED_KEY, None)
    if (
        not isinstance(kept, dict)
        or not secrets.compare_digest(str(kept.get("nonce", "")), nonce)
        or kept.get("path") != request.path
        or kept.get("uid") != getattr(request.user, "pk", None)
        or not 0 <= clock.time() - float(kept.get("at", 0)) <= app_settings.reauth_seconds * 2
    ):
        return None
    pairs = [(str(name), str(v)) for name, values in kept.get("data", []) for v in values]
    return QueryDict(urlencode(pairs))


def applies_carried_change(view: View) -> View:
    """Send again, as the POST it was, the form kept while its sender confirmed it is them
    (:func:`confirm_then_apply`): the change is applied, or its page shown with what was
    wrong. Only with a recent confirmation, only on the page it came from, only once.

    The kept form passed the CSRF check when it was first sent, and the link back carries
    a one-time number only the confirmation hands out: another site cannot make a page
    apply anything."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if CARRIED_PARAM in request.GET and request.user.is_authenticated:
            if not flows.recent_auth(request, app_settings.reauth_seconds):
                return view(request, *args, **kwargs)  # the guard asks again
            data = _take_carried(request)
            if data is None:
                messages.info(request, _("Nothing was changed. Please make your change again."))
                response = view(request, *args, **kwargs)
                # A button's address (POST only) has no page to show: the Security page has it.
                return redirect("account:security") if response.status_code == 405 else response
            request.method = "POST"
            request.POST = data  # type: ignore[assignment]  # immutable, as built from a string
        return view(request, *args, **kwargs)

    return wrapper
