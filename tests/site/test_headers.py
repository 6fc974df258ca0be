"""Every page that answers GET carries the security headers, signed in or not."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from keyfob.site.middleware import CONTENT_SECURITY_POLICY
from tests.conftest import Enrolled, password_step

pytestmark = pytest.mark.django_db


def every_path() -> list[str]:
    """A concrete path for each URL pattern (a sample value for each converter)."""
    found: list[str] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            else:
                found.append("/" + re.sub(r"<(?:int:)?[^>]+>", "1", route).lstrip("^").rstrip("$"))

    walk(get_resolver().url_patterns, "")
    return sorted(set(found))


def assert_hardened(path: str, response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code < 500, path
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, path
    assert response["X-Frame-Options"] == "DENY", path
    assert response["Referrer-Policy"] == "same-origin", path
    assert response["X-Content-Type-Options"] == "nosniff", path
    assert response["Cache-Control"] == "no-store", path


def test_the_paths_cover_the_portal() -> None:
    paths = every_path()
    for expected in ["/login/", "/login/code/", "/account/security/", "/healthz", "/readyz"]:
        assert expected in paths


def test_every_page_signed_out(client: Client) -> None:
    for path in every_path():
        assert_hardened(path, client.get(path))


def test_every_page_signed_in(
    client: Client,
    user_with_totp: Enrolled,
    frozen_time: float,
) -> None:
    password_step(client)
    assert client.post("/login/code/", {"code": user_with_totp.code()}).status_code == 302
    for path in every_path():
        if path == "/logout/":
            continue  # a GET is refused (405) but let it not sign this client out
        assert_hardened(path, client.get(path))
    assert_hardened("/logout/", client.get("/logout/"))
    # Still signed in: the walk really saw the pages behind the sign-in.
    assert client.get("/account/security/").status_code == 200


def test_http_by_default_keeps_cookies_usable_on_plain_http(client: Client) -> None:
    response = client.get("/login/")
    assert "Strict-Transport-Security" not in response
    cookie = response.cookies["keyfob-csrf"]
    assert not cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
