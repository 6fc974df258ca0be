"""The token endpoint under concurrency, each thread on its own connection to PostgreSQL:
one authorization code sent by several requests at once gets tokens once; one refresh
token sent at once is rotated once, and the reuse the others are (RFC 9700 4.14.2)
revokes the family rather than leaving a second live token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as Browser
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from keyfob.oidc import flows
from tests.audit.test_concurrency import in_threads
from tests.oidc.helpers import REDIRECT, code_for, signed_in, token, tokens_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
N = 6


@pytest.fixture
def app() -> tuple[Any, str]:
    return flows.create_client("Control panel", [REDIRECT], first_party=True)


def test_one_code_sent_at_once_gets_tokens_once(app: tuple[Any, str]) -> None:
    client, secret = app
    code, verifier = code_for(signed_in(), client.client_id)

    def exchange(_i: int) -> int:
        return int(
            token(
                Browser(),
                client.client_id,
                secret,
                grant_type="authorization_code",
                code=code,
                redirect_uri=REDIRECT,
                code_verifier=verifier,
            ).status_code
        )

    statuses = in_threads(N, exchange)
    assert sorted(statuses) == [200] + [400] * (N - 1), statuses
    assert get_access_token_model().objects.count() == 1
    assert get_refresh_token_model().objects.count() == 1


def test_one_refresh_token_sent_at_once_is_rotated_once(app: tuple[Any, str]) -> None:
    client, secret = app
    first = tokens_for(signed_in(), client.client_id, secret)

    def refresh(_i: int) -> tuple[int, dict[str, Any]]:
        answer = token(
            Browser(),
            client.client_id,
            secret,
            grant_type="refresh_token",
            refresh_token=first["refresh_token"],
        )
        return int(answer.status_code), answer.json()

    results = in_threads(N, refresh)
    won = [body for status, body in results if status == 200]
    assert len(won) <= 1, results
    assert all(status in (200, 400) for status, _body in results), results
    # Never two live refresh tokens from one: the old one is revoked, and the others'
    # reuse revoked the family, the winner's new token with it.
    live = get_refresh_token_model().objects.filter(revoked__isnull=True)
    assert live.count() == 0, list(live.values("pk", "token_family"))
    for body in won:
        again = token(
            Browser(),
            client.client_id,
            secret,
            grant_type="refresh_token",
            refresh_token=body["refresh_token"],
        )
        assert again.status_code == 400
