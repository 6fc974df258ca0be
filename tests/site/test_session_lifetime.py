"""A signed-in session ends after 30 minutes without a request, and 12 hours after sign-in."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob.core import clock
from tests.conftest import T0, password_step

pytestmark = pytest.mark.django_db
MINUTE = 60.0


def signed_in(client: Client) -> bool:
    return client.get("/account/").status_code == 200


def test_thirty_minutes_idle_signs_out(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    with clock.frozen(T0):
        password_step(client)
    with clock.frozen(T0 + 29 * MINUTE):
        assert signed_in(client)
    with clock.frozen(T0 + 58 * MINUTE):  # 29 minutes after the last request
        assert signed_in(client)
    with clock.frozen(T0 + 88 * MINUTE + 1):  # 30 minutes and a second
        response = client.get("/account/")
        assert response.status_code == 302 and response["Location"].startswith("/login/")
        assert "_auth_user_id" not in client.session
        page = client.get("/login/").content.decode()
        assert "Your session has ended. Please sign in again." in page


def test_twelve_hours_at_most_even_when_active(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    with clock.frozen(T0):
        password_step(client)
    at = T0
    while at + 25 * MINUTE < T0 + 12 * 3600:
        at += 25 * MINUTE
        with clock.frozen(at):
            assert signed_in(client), f"signed out after {(at - T0) / 3600:.1f} h"
    with clock.frozen(T0 + 12 * 3600 + 1):
        assert not signed_in(client)
        assert "_auth_user_id" not in client.session


def test_the_limits_are_settings(client: Client, user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KEYFOB_SESSION_IDLE = 5 * MINUTE
    with clock.frozen(T0):
        password_step(client)
    with clock.frozen(T0 + 4 * MINUTE):
        assert signed_in(client)
    with clock.frozen(T0 + 9 * MINUTE + 1):
        assert not signed_in(client)


def test_a_new_sign_in_starts_a_new_clock(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    with clock.frozen(T0):
        password_step(client)
    with clock.frozen(T0 + 31 * MINUTE):
        assert not signed_in(client)
        password_step(client)
    with clock.frozen(T0 + 55 * MINUTE):
        assert signed_in(client)


def test_an_api_request_is_not_session_activity(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    # The API is for server tokens: a browser's session cookie sent along does not keep the
    # portal session alive.
    with clock.frozen(T0):
        password_step(client)
    with clock.frozen(T0 + 29 * MINUTE):
        assert (
            client.post("/api/v1/ssh/verify", {}, content_type="application/json").status_code
            == 401
        )
    with clock.frozen(T0 + 31 * MINUTE):
        assert not signed_in(client)
