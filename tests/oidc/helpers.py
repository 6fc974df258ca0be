"""What the provider's tests share: a relying party's side of the code flow, driven
through Django's test client (the real views, middleware and library)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.test import Client as Browser

from keyfob.accounts.models import Factor, User
from tests.conftest import make_user, prove_for_client

REDIRECT = "http://127.0.0.1:9/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email profile",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def authorize(browser: Browser, client_id: str, challenge: str, **extra: str) -> Any:
    return browser.get("/oidc/authorize/?" + urlencode(params(client_id, challenge, **extra)))


def query(response: Any, redirect: str = REDIRECT) -> dict[str, str]:
    assert response.status_code == 302, (response.status_code, response.content[:300])
    location = response["Location"]
    assert location.startswith(redirect + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def token(browser: Browser, client_id: str, secret: str, **data: str) -> Any:
    return browser.post("/oidc/token/", data, HTTP_AUTHORIZATION=basic(client_id, secret))


def signed_in(email: str = "alice@example.com", factor: str = Factor.APP_CODE) -> Browser:
    """A browser whose session signed in with the password and ``factor``."""
    user = User.objects.filter(email=email).first() or make_user(email)
    browser = Browser()
    browser.force_login(user)
    prove_for_client(browser, user, factor)
    return browser


def code_for(browser: Browser, client_id: str) -> tuple[str, str]:
    """A fresh authorization code for ``client_id`` and its PKCE verifier."""
    verifier, challenge = pkce()
    got = query(authorize(browser, client_id, challenge))
    return got["code"], verifier


def tokens_for(browser: Browser, client_id: str, secret: str) -> dict[str, Any]:
    code, verifier = code_for(browser, client_id)
    answer = token(
        browser,
        client_id,
        secret,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert answer.status_code == 200, answer.content
    return dict(answer.json())
