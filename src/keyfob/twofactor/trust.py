"""The trusted-browser cookie: HttpOnly, SameSite=Lax, Secure (and ``__Host-``) over HTTPS."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings


def cookie_name(request: HttpRequest) -> str:
    return "__Host-keyfob-trust" if request.is_secure() else "keyfob-trust"


def set_cookie(request: HttpRequest, response: HttpResponse, token: str) -> None:
    response.set_cookie(
        cookie_name(request),
        token,
        max_age=app_settings.trust_days * 86400,
        path="/",
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )


def skip_code_step(request: HttpRequest, user: User) -> str | None:
    """After a right password: the replacement token if this browser is trusted, else None."""
    token = request.COOKIES.get(cookie_name(request), "")
    return flows.use_trusted_browser(user, token, Context.from_request(request))
