"""No token or secret where the protocol does not put it: not in a log line (the request
log writes paths, never queries or bodies), not in the database in the clear (access and
refresh tokens as checksums, RFC 9700; client secrets hashed)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import pytest
from django.forms.models import model_to_dict
from django.test import Client as Browser
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from keyfob.oidc import flows
from keyfob.oidc.models import Client
from keyfob.site.logging import JsonFormatter
from tests.oidc.helpers import REDIRECT, authorize, basic, pkce, query, signed_in, token, tokens_for


@pytest.fixture
def app(db: None) -> tuple[Any, str]:
    return flows.create_client("Control panel", [REDIRECT], first_party=True)


def whole_flow(client: Client, secret: str) -> list[str]:
    """Every value that must stay out of logs, from a real code flow, a refresh, userinfo,
    a wrong secret, a revocation and a logout."""
    browser = signed_in()
    verifier, challenge = pkce()
    code = query(authorize(browser, client.client_id, challenge))["code"]
    first = token(
        browser,
        client.client_id,
        secret,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    ).json()
    token(
        browser,
        client.client_id,
        "wrong" + secret,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
    )
    second = token(
        browser,
        client.client_id,
        secret,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
    ).json()
    browser.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {second['access_token']}")
    browser.get("/oidc/userinfo/?" + urlencode({"access_token": second["access_token"]}))
    Browser().post(
        "/oidc/revoke/",
        {"token": second["refresh_token"]},
        HTTP_AUTHORIZATION=basic(client.client_id, secret),
    )
    browser.get("/oidc/logout/?" + urlencode({"id_token_hint": second["id_token"]}))
    return [
        secret,
        code,
        verifier,
        first["access_token"],
        first["refresh_token"],
        second["access_token"],
        second["refresh_token"],
        second["id_token"],
        first["id_token"][-40:],  # the signature
    ]


def test_no_token_or_secret_in_a_log_line(
    app: tuple[Any, str], caplog: pytest.LogCaptureFixture
) -> None:
    client, secret = app
    # Keyfob's own loggers as verbose as KEYFOB_LOG_LEVEL allows; the others (Django,
    # the library, oauthlib) as a deployment has them.
    caplog.set_level(logging.DEBUG, logger="keyfob")
    values = whole_flow(client, secret)
    assert caplog.records, "nothing was logged: the test would prove nothing"
    requests = [r for r in caplog.records if r.name == "keyfob.request"]
    assert {getattr(r, "path", None) for r in requests} >= {"/oidc/authorize/", "/oidc/token/"}
    formatter = JsonFormatter()
    for record in caplog.records:
        # Both formats: JSON lines, and the plain one (the message alone). A record's
        # other attributes (Django's 4xx warnings carry the request) are written by
        # neither.
        lines = [formatter.format(record), logging.Formatter().format(record)]
        for line in lines:
            for value in values:
                assert value not in line, (record.name, line)
            for word in (
                "code=",
                "client_secret",
                "refresh_token=",
                "access_token=",
                "id_token_hint",
            ):
                assert word not in line, (record.name, line)


def test_tokens_are_not_stored_in_the_clear(app: tuple[Any, str]) -> None:
    client, secret = app
    values = whole_flow(client, secret)
    live = tokens_for(signed_in(), client.client_id, secret)
    values += [live["access_token"], live["refresh_token"]]
    rows = [
        *get_access_token_model().objects.all(),
        *get_refresh_token_model().objects.all(),
    ]
    assert {type(r).__name__ for r in rows} == {"AccessToken", "RefreshToken"}
    for row in rows:
        assert row.token == "", row  # COMPLIANT_BCP_RFC9700_TOKEN_STORAGE: a checksum only
        dumped = " ".join(str(v) for v in model_to_dict(row).values())
        for value in values[3:7] + values[-2:]:
            assert value not in dumped
    stored = Client.objects.get(pk=client.pk).client_secret
    assert stored != secret and secret not in stored
    assert stored.startswith(("argon2", "pbkdf2", "bcrypt", "scrypt")), stored[:10]
