"""The provider's protocol through Django's test client: code flow with PKCE, the ID
token verified against the JWKS, refresh (rotated, reuse detected), userinfo, revocation,
and the claims that say how the session signed in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client as Browser
from jwcrypto import jwk, jwt

from keyfob.accounts.models import Factor, User
from keyfob.oidc import flows
from tests.conftest import make_user, prove_for_client
from tests.oidc.helpers import REDIRECT, authorize, pkce, query, signed_in, token, tokens_for


@pytest.fixture
def app(db: None) -> tuple[Any, str]:
    return flows.create_client("Control panel", [REDIRECT], first_party=True)


def verified(browser: Browser, id_token: str) -> dict[str, Any]:
    keys = jwk.JWKSet.from_json(browser.get("/oidc/jwks/").content)
    return json.loads(jwt.JWT(jwt=id_token, key=keys).claims)


def test_code_flow_with_a_key_says_phr(app: tuple[Any, str]) -> None:
    client, secret = app
    user = make_user("alice@example.com")
    browser = Browser()
    browser.force_login(user)
    prove_for_client(browser, user, Factor.SECURITY_KEY)
    verifier, challenge = pkce()
    got = query(authorize(browser, client.client_id, challenge))
    assert got["state"] == "st4te" and "code" in got
    answer = token(
        browser,
        client.client_id,
        secret,
        grant_type="authorization_code",
        code=got["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    claims = verified(browser, body["id_token"])
    assert claims["sub"] == str(user.pk)
    assert claims["email"] == "alice@example.com"
    assert claims["nonce"] == "n0nce"
    assert claims["acr"] == "phr"
    assert set(claims["amr"]) == {"pwd", "hwk", "mfa"}
    assert isinstance(claims["auth_time"], int)
    # The code is single use.
    again = token(
        browser,
        client.client_id,
        secret,
        grant_type="authorization_code",
        code=got["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert again.status_code == 400
    # userinfo
    info = browser.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.status_code == 200, info.content
    assert info.json()["sub"] == str(user.pk)
    # refresh: rotated, the old one refused (and its family revoked)
    fresh = token(
        browser,
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=body["refresh_token"],
    )
    assert fresh.status_code == 200, fresh.content
    assert verified(browser, fresh.json()["id_token"])["acr"] == "phr"
    reuse = token(
        browser,
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=body["refresh_token"],
    )
    assert reuse.status_code == 400
    newest = token(
        browser,
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=fresh.json()["refresh_token"],
    )
    assert newest.status_code == 400  # reuse detected: the whole family is revoked


def test_password_and_code_says_mfa_and_phr_asks_for_a_key(app: tuple[Any, str]) -> None:
    client, secret = app
    browser = signed_in("bob@example.com", Factor.APP_CODE)
    body = tokens_for(browser, client.client_id, secret)
    claims = verified(browser, body["id_token"])
    _verifier, challenge = pkce()
    assert claims["acr"] == "mfa" and set(claims["amr"]) == {"pwd", "otp", "mfa"}
    # acr_values=phr without a key on the account: a page that says how, no code
    page = authorize(browser, client.client_id, challenge, acr_values="phr")
    assert page.status_code == 403
    assert b"back-to-app" in page.content
    # prompt=none with the same: interaction_required, to the app
    silent = query(authorize(browser, client.client_id, challenge, acr_values="phr", prompt="none"))
    assert silent["error"] == "interaction_required" and silent["state"] == "st4te"


def test_session_end_revokes_the_apps_tokens(app: tuple[Any, str]) -> None:
    from keyfob.accounts import sessions

    client, secret = app
    browser = signed_in("carol@example.com", Factor.APP_CODE)
    body = tokens_for(browser, client.client_id, secret)
    sessions.end_sessions(User.objects.get(email="carol@example.com"))
    refused = token(
        browser,
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=body["refresh_token"],
    )
    assert refused.status_code == 400
    info = Browser().get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert info.status_code == 401
