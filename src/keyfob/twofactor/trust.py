"""The trusted-browser cookie: HttpOnly, SameSite=Lax, Secure (and ``__Host-``) over HTTPS.

Whether a browser is trusted, and its token replaced, is the sign-in flow's decision
(``flows.after_password``, ``flows.after_second_factor``); this module only reads and
writes the cookie."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

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


def token(request: HttpRequest) -> str:
    """The trusted-browser token this browser sent ('' for none)."""
    return request.COOKIES.get(cookie_name(request), "")
