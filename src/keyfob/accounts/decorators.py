"""A guard for views: a recent re-authentication."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from keyfob.accounts import flows
from keyfob.accounts.app_settings import app_settings

View = Callable[..., HttpResponse]


def reauth_required(view: View) -> View:
    """Ask for the password (and a code, with 2FA) again unless given in the last minutes.

    A flow raising :class:`~keyfob.accounts.flows.ReauthRequired` (the window ran out
    between the guard and the change) is answered the same way.

    The person comes back to the page they asked for once done (``account:reauth``, whose
    page asks for whatever factors the account has).
    """

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if flows.recent_auth(request, app_settings.reauth_seconds):
            try:
                return view(request, *args, **kwargs)
            except flows.ReauthRequired:
                pass
        # A POST cannot be replayed by a redirect: come back to the Security page, where
        # the buttons that POST (revoking browsers) are, to press it again.
        back = request.get_full_path() if request.method == "GET" else reverse("account:security")
        return reauth_redirect(back)

    return wrapper


def reauth_redirect(back: str) -> HttpResponse:
    """To "Confirm it is you", then back to ``back`` (a path on this site)."""
    return redirect(f"{reverse('account:reauth')}?{urlencode({'next': back})}")
