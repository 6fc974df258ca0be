"""Junk at the token, userinfo, revocation and logout endpoints: a protocol error, never a
500, nothing issued; and the token endpoint's throttle per client and address."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client as Browser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from keyfob.core import clock, throttle
from keyfob.oidc import flows
from tests.conftest import T0
from tests.oidc.helpers import REDIRECT, basic, code_for, signed_in, token, tokens_for

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def app(db: None) -> tuple[Any, str]:
    return flows.create_client("Control panel", [REDIRECT], first_party=True)


@pytest.fixture
def other(db: None) -> tuple[Any, str]:
    return flows.create_client("Webmail", [REDIRECT], first_party=True)


def nothing_issued() -> None:
    assert not get_access_token_model().objects.exists()
    assert not get_refresh_token_model().objects.exists()


def exchange(browser: Browser, client_id: str, secret: str, code: str, verifier: str) -> Any:
    return token(
        browser,
        client_id,
        secret,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )


def error(response: Any, status: int, name: str) -> None:
    assert response.status_code == status, (response.status_code, response.content)
    assert response.json()["error"] == name, response.content


# --- the token endpoint -------------------------------------------------------------------


def test_wrong_verifier_replayed_code_and_swapped_clients(
    app: tuple[Any, str], other: tuple[Any, str]
) -> None:
    client, secret = app
    client2, secret2 = other
    browser = signed_in()
    code, verifier = code_for(browser, client.client_id)
    error(exchange(browser, client.client_id, secret, code, "x" * 43), 400, "invalid_grant")
    empty = exchange(browser, client.client_id, secret, code, "")
    assert empty.status_code == 400 and empty.json()["error"] in (
        "invalid_request",
        "invalid_grant",
    )
    # Another client, with its own good credentials, cannot use this client's code.
    error(exchange(browser, client2.client_id, secret2, code, verifier), 400, "invalid_grant")
    nothing_issued()
    # Another redirect_uri than the code's
    wrong_uri = token(
        browser,
        client.client_id,
        secret,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT + "x",
        code_verifier=verifier,
    )
    assert wrong_uri.status_code == 400
    nothing_issued()


def test_a_replayed_code_gets_nothing(app: tuple[Any, str]) -> None:
    client, secret = app
    browser = signed_in()
    code, verifier = code_for(browser, client.client_id)
    assert exchange(browser, client.client_id, secret, code, verifier).status_code == 200
    error(exchange(browser, client.client_id, secret, code, verifier), 400, "invalid_grant")
    assert get_access_token_model().objects.count() == 1


def test_client_authentication(app: tuple[Any, str], caplog: pytest.LogCaptureFixture) -> None:
    client, secret = app
    browser = signed_in()
    code, verifier = code_for(browser, client.client_id)
    caplog.set_level(logging.WARNING, logger="keyfob.oidc")
    error(
        exchange(browser, client.client_id, "wrong" + secret, code, verifier), 401, "invalid_client"
    )
    # No authentication at all: a confidential client must authenticate.
    bare = browser.post(
        "/oidc/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": client.client_id,
        },
    )
    error(bare, 401, "invalid_client")
    for header in ("Basic !!!", "Basic " + "a" * 5000, "Bearer x", "Basic Og==", "Basic w6k="):
        answer = browser.post(
            "/oidc/token/",
            {"grant_type": "authorization_code", "code": code, "code_verifier": verifier},
            HTTP_AUTHORIZATION=header,
        )
        assert answer.status_code in (400, 401), (header, answer.status_code)
    nothing_issued()
    lines = [r.getMessage() for r in caplog.records if r.name == "keyfob.oidc"]
    assert f"client authentication failed: client {client.client_id} from 127.0.0.1" in lines
    assert not any(secret in line for line in lines)
    # Still usable by the real client: a few failures are not a lock-out.
    assert exchange(browser, client.client_id, secret, code, verifier).status_code == 200


@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "client_credentials",
        "implicit",
        "",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ],
)
def test_other_grants_are_refused(app: tuple[Any, str], grant_type: str) -> None:
    client, secret = app
    answer = token(
        Browser(), client.client_id, secret, grant_type=grant_type, username="a", password="b"
    )
    assert answer.status_code == 400, answer.content
    # The library refuses the password and client credentials grants for a client not
    # registered for them (no Keyfob client is: only code, refresh and device).
    assert answer.json()["error"] in (
        "unsupported_grant_type",
        "invalid_request",
        "unauthorized_client",
    )
    nothing_issued()


def test_junk_bodies(app: tuple[Any, str]) -> None:
    client, secret = app
    browser = Browser()
    auth = basic(client.client_id, secret)
    as_json = browser.post(
        "/oidc/token/",
        json.dumps({"grant_type": "authorization_code", "code": "x"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert as_json.status_code == 400
    huge = browser.post(
        "/oidc/token/",
        "grant_type=authorization_code&code=" + "a" * 3_000_000,
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=auth,
    )
    assert huge.status_code == 400
    binary = browser.post(
        "/oidc/token/",
        b"\xff\xfe\x00grant_type=\x80",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=auth,
    )
    assert binary.status_code == 400
    nothing_issued()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "grant_type",
                "code",
                "refresh_token",
                "code_verifier",
                "redirect_uri",
                "scope",
                "client_id",
                "client_secret",
                "device_code",
            ]
        ),
        st.one_of(
            st.text(max_size=80),
            st.sampled_from(
                [
                    "authorization_code",
                    "refresh_token",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ]
            ),
        ),
        max_size=6,
    )
)
def test_any_token_request_junk(app: tuple[Any, str], data: dict[str, str]) -> None:
    client, secret = app
    with clock.frozen(T0):  # no throttle wait can build up between examples
        answer = Browser().post(
            "/oidc/token/", data, HTTP_AUTHORIZATION=basic(client.client_id, secret)
        )
    # 404: the library's "device_not_found" for a device code no device has
    assert answer.status_code in (400, 401, 404, 429), (data, answer.status_code, answer.content)
    nothing_issued()


@pytest.mark.parametrize("junk", ["", "x", "a" * 5000, "\u00e9\u00e9", "null", "' OR 1=1 --"])
def test_bad_refresh_tokens(app: tuple[Any, str], other: tuple[Any, str], junk: str) -> None:
    client, secret = app
    answer = token(
        Browser(), client.client_id, secret, grant_type="refresh_token", refresh_token=junk
    )
    assert answer.status_code == 400
    nothing_issued()


def test_another_clients_refresh_token(app: tuple[Any, str], other: tuple[Any, str]) -> None:
    client, secret = app
    client2, secret2 = other
    got = tokens_for(signed_in(), client.client_id, secret)
    answer = token(
        Browser(),
        client2.client_id,
        secret2,
        grant_type="refresh_token",
        refresh_token=got["refresh_token"],
    )
    error(answer, 400, "invalid_grant")
    # and it did not cost the rightful client its token
    again = token(
        Browser(),
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=got["refresh_token"],
    )
    assert again.status_code == 200, again.content


# --- the throttle, per client and address --------------------------------------------


def test_a_client_that_keeps_failing_is_refused_for_a_while(app: tuple[Any, str]) -> None:
    client, secret = app
    browser = signed_in()
    code, verifier = code_for(browser, client.client_id)
    now = clock.time()
    with clock.frozen(now):
        for _i in range(throttle.OIDC_CLIENT.free):
            answer = exchange(browser, client.client_id, "wrong", code, verifier)
            assert answer.status_code == 401
        refused = exchange(browser, client.client_id, secret, code, verifier)
        assert refused.status_code == 429
        assert int(refused["Retry-After"]) >= 30
        assert refused.json()["error"] == "invalid_request"
    nothing_issued()
    with clock.frozen(now + 31):
        answer = exchange(browser, client.client_id, secret, code, verifier)
    assert answer.status_code == 200, answer.content
    assert throttle.consecutive_failures(throttle.OIDC_CLIENT, f"{client.client_id} 127.0.0.1") == 0


def test_the_throttle_is_per_address_and_bad_codes_count(app: tuple[Any, str]) -> None:
    client, secret = app
    browser = signed_in()
    code, verifier = code_for(browser, client.client_id)
    with clock.frozen(clock.time()):
        for i in range(throttle.OIDC_CLIENT.free):
            answer = exchange(browser, client.client_id, secret, f"guess{i}", verifier)
            assert answer.status_code == 400
        assert exchange(browser, client.client_id, secret, code, verifier).status_code == 429
        from_elsewhere = browser.post(
            "/oidc/token/",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
            HTTP_AUTHORIZATION=basic(client.client_id, secret),
            REMOTE_ADDR="192.0.2.7",
        )
    assert from_elsewhere.status_code == 200, from_elsewhere.content


def test_unknown_client_ids_share_one_count_per_address(app: tuple[Any, str]) -> None:
    with clock.frozen(T0):
        for i in range(throttle.OIDC_CLIENT.free + 2):
            answer = token(Browser(), f"nope{i}", "x", grant_type="authorization_code", code="c")
            assert answer.status_code in (401, 429)
        assert answer.status_code == 429
    from keyfob.core.models import Throttle

    assert list(Throttle.objects.filter(scope="oidc-client").values_list("key", flat=True)) == [
        "unknown 127.0.0.1"
    ]


def test_a_polling_device_is_not_counted(db: None) -> None:
    device, _ = flows.create_client("CLI", [], public=True, device=True)
    browser = Browser()
    started = browser.post(
        "/oidc/device/authorize/",
        urlencode({"client_id": device.client_id}),
        content_type="application/x-www-form-urlencoded",
    )
    assert started.status_code == 200, started.content
    device_code = started.json()["device_code"]
    with clock.frozen(T0):
        for _i in range(throttle.OIDC_CLIENT.free + 2):
            poll = browser.post(
                "/oidc/token/",
                urlencode(
                    {
                        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                        "device_code": device_code,
                        "client_id": device.client_id,
                    }
                ),
                content_type="application/x-www-form-urlencoded",
            )
            assert poll.status_code == 400
            assert poll.json()["error"] in ("authorization_pending", "slow_down")


def test_the_device_endpoint_is_throttled(db: None) -> None:
    with clock.frozen(T0):
        for _i in range(throttle.OIDC_CLIENT.free):
            answer = Browser().post("/oidc/device/authorize/", "client_id=nope", content_type=FORM)
            assert answer.status_code in (400, 401), answer.content
        answer = Browser().post("/oidc/device/authorize/", "client_id=nope", content_type=FORM)
    assert answer.status_code == 429


# --- userinfo, revocation, logout ------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Bearer x",
        "Bearer ",
        "Bearer " + "a" * 10000,
        "Basic eDp5",
        "bearer \u00e9",
        "x",
        "Bearer a b",
    ],
)
def test_userinfo_with_junk(db: None, header: str) -> None:
    answer = Browser().get("/oidc/userinfo/", HTTP_AUTHORIZATION=header)
    assert answer.status_code in (400, 401, 403), answer.status_code


def test_userinfo_access_token_in_the_query_is_refused(app: tuple[Any, str]) -> None:
    client, secret = app
    got = tokens_for(signed_in(), client.client_id, secret)
    answer = Browser().get("/oidc/userinfo/?" + urlencode({"access_token": got["access_token"]}))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def revoke(client_id: str, secret: str, value: str, hint: str = "") -> Any:
    data = {"token": value, **({"token_type_hint": hint} if hint else {})}
    return Browser().post("/oidc/revoke/", data, HTTP_AUTHORIZATION=basic(client_id, secret))


def userinfo(access: str) -> int:
    return int(Browser().get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access}").status_code)


def test_revoking_a_refresh_token_stops_its_access_token(app: tuple[Any, str]) -> None:
    client, secret = app
    got = tokens_for(signed_in(), client.client_id, secret)
    assert userinfo(got["access_token"]) == 200
    assert (
        revoke(client.client_id, secret, got["refresh_token"], "refresh_token").status_code == 200
    )
    assert userinfo(got["access_token"]) == 401
    refreshed = token(
        Browser(),
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=got["refresh_token"],
    )
    assert refreshed.status_code == 400


@pytest.mark.parametrize("junk", ["x", "a" * 3000, "\u00e9", ""])
def test_revoking_junk(app: tuple[Any, str], junk: str) -> None:
    client, secret = app
    answer = revoke(client.client_id, secret, junk)
    # RFC 7009 2.2: an invalid token is answered 200; a missing one is a bad request.
    assert answer.status_code == (400 if junk == "" else 200), answer.content


def test_revoking_needs_the_clients_credentials(app: tuple[Any, str]) -> None:
    client, secret = app
    got = tokens_for(signed_in(), client.client_id, secret)
    assert revoke(client.client_id, "wrong", got["refresh_token"]).status_code == 401
    assert userinfo(got["access_token"]) == 200


def test_another_clients_token_is_not_revoked(app: tuple[Any, str], other: tuple[Any, str]) -> None:
    client, secret = app
    client2, secret2 = other
    got = tokens_for(signed_in(), client.client_id, secret)
    for value in (got["refresh_token"], got["access_token"]):
        answer = revoke(client2.client_id, secret2, value)
        assert answer.status_code in (200, 400, 401)
    assert userinfo(got["access_token"]) == 200
    refreshed = token(
        Browser(),
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=got["refresh_token"],
    )
    assert refreshed.status_code == 200


@pytest.mark.parametrize("hint", ["x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "a" * 3000])
def test_logout_with_a_junk_id_token_hint(app: tuple[Any, str], hint: str) -> None:
    browser = signed_in()
    answer = browser.get("/oidc/logout/?" + urlencode({"id_token_hint": hint}))
    assert answer.status_code < 500
    if answer.status_code in (301, 302):
        assert answer["Location"].startswith("/")


@pytest.mark.parametrize(
    "uri", ["https://evil.example/", "http://127.0.0.1:9/callback@evil.example", "//evil.example"]
)
def test_logout_never_redirects_to_an_unregistered_address(app: tuple[Any, str], uri: str) -> None:
    client, secret = app
    browser = signed_in()
    got = tokens_for(browser, client.client_id, secret)
    answer = browser.get(
        "/oidc/logout/?"
        + urlencode(
            {
                "id_token_hint": got["id_token"],
                "post_logout_redirect_uri": uri,
                "client_id": client.client_id,
            }
        )
    )
    assert answer.status_code < 500
    if answer.status_code in (301, 302):
        assert not answer["Location"].startswith(
            ("https://evil", "//", "http://127.0.0.1:9/callback@")
        )
    posted = browser.post(
        "/oidc/logout/?"
        + urlencode({"id_token_hint": got["id_token"], "post_logout_redirect_uri": uri}),
        {"allow": "Yes"},
    )
    assert posted.status_code < 500
    if posted.status_code in (301, 302):
        assert "evil" not in posted["Location"]


def test_client_failures_are_counted_in_metrics(app: tuple[Any, str], settings: Any) -> None:
    client, _secret = app
    settings.KEYFOB_METRICS_TOKEN = "m" * 32
    for _i in range(3):
        token(Browser(), client.client_id, "wrong", grant_type="refresh_token", refresh_token="x")
    text = Browser().get("/metrics", HTTP_AUTHORIZATION="Bearer " + "m" * 32).content.decode()
    assert "keyfob_oidc_client_failures 3\n" in text
