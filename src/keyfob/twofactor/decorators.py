"""A guard for views: staff with 2FA (the re-authentication guard is accounts')."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from keyfob.accounts.models import User
from keyfob.twofactor import flows

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Staff only, and staff must use 2FA: without it they are sent to the setup page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = request.user
        if not isinstance(user, User) or not user.is_staff:
            raise Http404  # the site's own "Page not found": staff pages do not exist here
        if not flows.has_2fa(user):
            return redirect("account:setup")
        return view(request, *args, **kwargs)

    return wrapper
