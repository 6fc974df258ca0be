"""The device grant's polls under concurrency, each thread on its own database connection
(real PostgreSQL when KEYFOB_TEST_DATABASE_URL names one; SQLite otherwise): a device code
gives tokens once, and of polls at once while pending one counts and the rest slow down."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client as Browser
from oauth2_provider.models import get_access_token_model

from keyfob.accounts.models import Factor
from keyfob.core import clock
from keyfob.oidc import flows
from tests.audit.test_concurrency import in_threads
from tests.conftest import make_user, prove_for_client
from tests.oidc.device_client import DeviceClient, DjangoTransport

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]
T0 = 1_900_000_000.0


def test_an_approved_device_code_polled_ten_times_at_once_gives_tokens_once() -> None:
    cli, _ = flows.create_client("keyfob-ssh", [], device=True, public=True)
    user = make_user("alice@example.com")
    with clock.frozen(T0):
        starter = DeviceClient(DjangoTransport(Browser()), cli.client_id)
        code = starter.start().body["user_code"]
        device_code = starter.started["device_code"]
        browser = Browser()
        browser.force_login(user)
        prove_for_client(browser, user, Factor.APP_CODE)
        browser.post("/oidc/device/", {"user_code": code})
        answer = browser.post(
            f"/oidc/device/confirm/{cli.client_id}/{code}/", {"action": "approve"}
        )
        assert answer.status_code == 302

    def poll(_i: int) -> Any:
        return DeviceClient(DjangoTransport(Browser()), cli.client_id).poll(device_code)

    with clock.frozen(T0 + 10):  # the clock is the process's: frozen once, for every thread
        results = in_threads(10, poll)
    assert sorted(r.status for r in results) == [200] + [400] * 9
    assert {r.error for r in results if r.status == 400} == {"invalid_grant"}
    assert get_access_token_model().objects.count() == 1


def test_pending_polls_at_once_one_counts_the_rest_slow_down() -> None:
    cli, _ = flows.create_client("keyfob-ssh", [], device=True, public=True)
    with clock.frozen(T0):
        starter = DeviceClient(DjangoTransport(Browser()), cli.client_id)
        starter.start()
        device_code = starter.started["device_code"]

    def poll(_i: int) -> Any:
        return DeviceClient(DjangoTransport(Browser()), cli.client_id).poll(device_code)

    with clock.frozen(T0 + 10):
        results = in_threads(8, poll)
    assert sorted(r.error for r in results) == ["authorization_pending"] + ["slow_down"] * 7
