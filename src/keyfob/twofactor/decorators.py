"""A guard for views: staff with 2FA (the re-authentication guard is accounts')."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from keyfob.accounts.decorators import reauth_redirect
from keyfob.accounts.models import User
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Staff only, and staff must use 2FA.

    With ``KEYFOB_STAFF_PHISHING_RESISTANT`` on (the default), a staff page needs a sign-in
    (or a "Confirm it is you") made with a security key or passkey in this session: a code
    can be relayed by a phishing page, a key's signature cannot. A staff member without a
    key is sent to add one; one with a key, signed in some other way, to confirm with it.
    Off, any second factor will do, and a staff member without one is sent to turn 2FA on.
    """

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        user = request.user
        if not isinstance(user, User) or not user.is_staff:
            raise Http404  # the site's own "Page not found": staff pages do not exist here
        if app_settings.staff_phishing_resistant:
            if not flows.phishing_resistant(request):
                return _to_security_key(request, user)
        elif not flows.has_2fa(user):
            return redirect("account:setup")
        return view(request, *args, **kwargs)

    return wrapper


def _to_security_key(request: HttpRequest, user: User) -> HttpResponse:
    if not flows.security_keys(user):
        # One page says why and adds the first key with its enrolment code, then back here.
        back = request.get_full_path() if request.method == "GET" else reverse("account:security")
        return redirect(f"{reverse('account:staff-key')}?{urlencode({'next': back})}")
    messages.info(
        request,
        _(
            "Staff pages need a sign-in made with your security key or passkey, which a "
            "phishing page cannot relay. Confirm it is you with your key."
        ),
    )
    # A POST cannot be replayed by a redirect: come back to the Security page (as
    # reauth_required does).
    back = request.get_full_path() if request.method == "GET" else reverse("account:security")
    return reauth_redirect(back)
