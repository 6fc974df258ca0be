"""Junk at the authorization endpoint: each a protocol error back to the app (only to a
redirect URI registered exactly) or a page for the person, never a 500, never a code.
The token, userinfo, revocation and logout endpoints: tests/oidc/test_junk_endpoints.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_grant_model

from keyfob.oidc import flows
from keyfob.oidc.views import MAX_PARAMETER
from tests.oidc.helpers import REDIRECT, authorize, params, pkce, query, signed_in

EVIL = "https://evil.example/callback"


@pytest.fixture
def app(db: None) -> tuple[Any, str]:
    return flows.create_client("Control panel", [REDIRECT], first_party=True)


@pytest.fixture
def public_app(db: None) -> tuple[Any, str]:
    return flows.create_client("Mail", [REDIRECT], public=True, first_party=True)


def no_code_issued(codes: int = 0) -> None:
    assert get_grant_model().objects.count() == codes


def refused_here(response: Any, codes: int = 0) -> None:
    """A page for the person (4xx), no redirect anywhere (and no code but the ``codes``
    the test made itself)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert "Location" not in response
    no_code_issued(codes)


def refused_to_app(response: Any, error: str | None = None) -> dict[str, str]:
    """Back to the registered redirect URI with an error, no code."""
    got = query(response)
    assert "code" not in got and "access_token" not in got and "id_token" not in got, got
    assert "error" in got, got
    if error is not None:
        assert got["error"] == error, got
    no_code_issued()
    return got


def refused(response: Any) -> None:
    """Either of the above: what matters is no code, no 500, no other address."""
    if response.status_code == 302:
        refused_to_app(response)
    else:
        refused_here(response)


# --- the client and its redirect URI: never redirect anywhere unregistered -------------


@pytest.mark.parametrize("client_id", ["", "nope", "x" * 300, "../admin", "\u00e9t\u00e9"])
def test_unknown_client_is_a_page(app: tuple[Any, str], client_id: str) -> None:
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client_id, challenge)
    refused_here(response)


def test_missing_client_id_is_a_page(app: tuple[Any, str]) -> None:
    _verifier, challenge = pkce()
    data = params("", challenge)
    del data["client_id"]
    refused_here(signed_in().get("/oidc/authorize/?" + urlencode(data)))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        EVIL,
        REDIRECT + "/",  # a suffix
        REDIRECT + "x",
        REDIRECT[:-1],  # a prefix
        "http://127.0.0.1:9/",
        "http://127.0.0.1:9/callback/../evil",  # path traversal
        "http://127.0.0.1:9/evil/../callback",
        "http://127.0.0.1:9/callback#frag",  # a fragment
        "http://127.0.0.1:9/callback?next=https://evil.example",
        "http://127.0.0.1:9@evil.example/callback",  # userinfo tricks
        "http://127.0.0.1:9/callback@evil.example",
        "http://user@127.0.0.1:9/callback",
        "http://127.0.0.1:9%2Fcallback",  # encoded
        "http://127.0.0.1:9/%63allback",
        quote(REDIRECT, safe=""),
        "http://127.0.0.1:9/CALLBACK",
        "//evil.example/callback",
        "javascript:alert(1)",
        "",
    ],
)
def test_redirect_uri_must_match_exactly(app: tuple[Any, str], redirect_uri: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client.client_id, challenge, redirect_uri=redirect_uri)
    refused_here(response)


def test_a_loopback_address_may_take_any_port_but_nothing_else(app: tuple[Any, str]) -> None:
    """RFC 8252 7.3: a native app on this machine listens on a port it gets from the
    system, so the port of a loopback redirect URI is free (ALLOW_LOCALHOST_LOOPBACK);
    the rest still matches exactly."""
    client, _secret = app
    _verifier, challenge = pkce()
    browser = signed_in()
    other = "http://127.0.0.1:10/callback"
    assert "code" in query(
        authorize(browser, client.client_id, challenge, redirect_uri=other), other
    )
    for uri in (
        "http://127.0.0.1:10/callbacks",
        "http://localhost:9/callback",
        "http://[::1]:9/callback",
    ):
        refused_here(authorize(browser, client.client_id, challenge, redirect_uri=uri), codes=1)


def test_userinfo_tricks_on_an_https_client(db: None) -> None:
    registered = "https://panel.example/oidc/callback"
    client, _secret = flows.create_client("Panel", [registered], first_party=True)
    _verifier, challenge = pkce()
    browser = signed_in()
    for uri in (
        "https://panel.example@evil.example/oidc/callback",
        "https://panel.example.evil.example/oidc/callback",
        "https://evil.example/?https://panel.example/oidc/callback",
        "https://panel.example/oidc/callback/../../evil",
        "https://panel.example:8443/oidc/callback",  # another port
        "https://panel.example/oidc/callback%23",
        "http://panel.example/oidc/callback",
    ):
        refused_here(authorize(browser, client.client_id, challenge, redirect_uri=uri))
    # The registered one works: the refusals above were about the address alone.
    got = query(
        authorize(browser, client.client_id, challenge, redirect_uri=registered), registered
    )
    assert "code" in got


# --- what is asked: no implicit or hybrid, PKCE S256 only --------------------------------


@pytest.mark.parametrize(
    "response_type", ["token", "id_token", "code id_token", "code token", "id_token token", "none"]
)
def test_no_implicit_or_hybrid(app: tuple[Any, str], response_type: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client.client_id, challenge, response_type=response_type)
    refused(response)
    if response.status_code == 302:
        assert "#" not in response["Location"]


@pytest.mark.parametrize("public", [False, True])
def test_pkce_is_required(db: None, public: bool) -> None:
    client, _secret = flows.create_client("App", [REDIRECT], public=public, first_party=True)
    browser = signed_in()
    data = params(client.client_id, "")
    del data["code_challenge"], data["code_challenge_method"]
    refused_to_app(browser.get("/oidc/authorize/?" + urlencode(data)), "invalid_request")
    _verifier, challenge = pkce()
    for method in ("plain", "S512", "s256", ""):
        refused_to_app(
            authorize(browser, client.client_id, challenge, code_challenge_method=method),
            "invalid_request",
        )
    for bad in ("short", "a" * 129, "not base64url!" * 4):
        response = authorize(browser, client.client_id, bad)
        refused_to_app(response, "invalid_request")


# --- oversized, undecodable, duplicated --------------------------------------------------


@pytest.mark.parametrize("name", ["state", "nonce", "scope", "claims", "acr_values", "login_hint"])
def test_oversized_parameter_is_a_page(app: tuple[Any, str], name: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client.client_id, challenge, **{name: "a" * 100_000})
    refused_here(response)
    assert response.status_code == 400
    assert b"too long" in response.content


def test_the_too_long_page_in_french(app: tuple[Any, str]) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    data = params(client.client_id, challenge, state="a" * 100_000)
    response = signed_in().get("/oidc/authorize/?" + urlencode(data), HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400
    assert "La demande de cette application est trop longue" in response.content.decode()


def test_a_parameter_at_the_limit_passes(app: tuple[Any, str]) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    state = "s" * MAX_PARAMETER
    got = query(authorize(signed_in(), client.client_id, challenge, state=state))
    assert got["state"] == state and "code" in got


def test_oversized_query_is_a_page(app: tuple[Any, str]) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    many = {f"x{i}": "y" * 1000 for i in range(40)}
    refused_here(authorize(signed_in(), client.client_id, challenge, **many))


@pytest.mark.parametrize(
    "raw",
    [
        "state=%ff%fe",
        "state=%00",
        "state=a%0d%0aSet-Cookie:%20x=1",
        "nonce=%c3%28",
        "scope=openid%00",
    ],
)
def test_undecodable_and_control_characters(app: tuple[Any, str], raw: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    data = params(client.client_id, challenge)
    name = raw.split("=")[0]
    del data[name]
    response = signed_in().get("/oidc/authorize/?" + urlencode(data) + "&" + raw)
    assert response.status_code < 500
    if response.status_code == 302:
        location = response["Location"]
        assert location.startswith(REDIRECT + "?")
        assert "\r" not in location and "\n" not in location and "\x00" not in location
    assert "Set-Cookie" not in response or "x=1" not in str(response.cookies)


@pytest.mark.parametrize(
    "name", ["client_id", "redirect_uri", "response_type", "state", "scope", "code_challenge"]
)
def test_duplicated_parameters(app: tuple[Any, str], name: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    data = params(client.client_id, challenge)
    other = {"redirect_uri": EVIL, "client_id": "nope", "response_type": "token"}.get(name, "x")
    response = signed_in().get(
        "/oidc/authorize/?" + urlencode(data) + "&" + urlencode({name: other})
    )
    refused(response)


# --- claims, max_age, prompt --------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        "not json",
        "{",
        "[]",
        '"acr"',
        "null",
        "1",
        '{"id_token": "acr"}',
        '{"id_token": []}',
        '{"id_token": {"acr": "phr"}}',
        '{"id_token": {"acr": {"essential": "yes", "values": "phr"}}}',
        '{"id_token": {"acr": {"essential": true, "values": [1, null, {}]}}}',
        '{"id_token": {"acr": {"essential": true, "value": ["phr"]}}}',
        '{"userinfo": 5}',
    ],
)
def test_claims_of_the_wrong_shape(app: tuple[Any, str], claims: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client.client_id, challenge, claims=claims)
    assert response.status_code < 500, response.content[:500]
    if response.status_code == 302:
        got = query(response)
        assert "error" in got or "code" in got


@pytest.mark.parametrize("max_age", ["-1", "abc", "1e3", "1.5", "\u0663", " 5", "", "9" * 30])
def test_bad_max_age(app: tuple[Any, str], max_age: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client.client_id, challenge, max_age=max_age)
    refused_to_app(response, "invalid_request")


@pytest.mark.parametrize(
    "prompt", ["none login", "none consent", "login none", "none select_account"]
)
def test_prompt_none_with_others_is_refused(app: tuple[Any, str], prompt: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client.client_id, challenge, prompt=prompt)
    refused_to_app(response, "invalid_request")


@pytest.mark.parametrize("prompt", ["bogus", "LOGIN", "\u00e9", "create"])
def test_unknown_prompt_values(app: tuple[Any, str], prompt: str) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    response = authorize(signed_in(), client.client_id, challenge, prompt=prompt)
    assert response.status_code < 500, response.content[:500]
    if response.status_code == 302 and response["Location"].startswith(REDIRECT):
        got = query(response)
        assert "error" in got or "code" in got


# --- hypothesis: any value of any parameter ---------------------------------------------

NAMES = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "acr_values",
    "claims",
    "response_mode",
    "ui_locales",
    "id_token_hint",
    "login_hint",
    "request",
    "request_uri",
    "resource",
]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=st.dictionaries(
        st.sampled_from(NAMES),
        st.one_of(
            st.text(max_size=60),
            st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60),
            st.sampled_from(["none", "login", "code", "token", "S256", "plain", "phr", "{}"]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_junk_is_never_a_500_nor_elsewhere(
    app: tuple[Any, str], changes: dict[str, str]
) -> None:
    client, _secret = app
    _verifier, challenge = pkce()
    browser = signed_in()
    data = {**params(client.client_id, challenge), **changes}
    response = browser.get("/oidc/authorize/?" + urlencode(data))
    assert response.status_code < 500, (changes, response.content[:500])
    if response.status_code in (301, 302, 303, 307, 308):
        location = response["Location"]
        # Only to the registered address, or to Keyfob's own pages (sign-in, confirm).
        assert location.startswith((REDIRECT + "?", "/")), (changes, location)
        assert not location.startswith("//"), location
