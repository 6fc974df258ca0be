"""The device authorization grant end to end: the portal served (live_server), a tool's
client (tests.oidc.device_client over real HTTP) asking and polling, the person in real
headless Chromium signing in, opening verification_uri_complete and approving or denying;
an account with a security key confirms with it (Chrome's virtual authenticator)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyfob.core import clock
from keyfob.oidc import flows
from keyfob.oidc.models import Authorization
from tests.conftest import PASSWORD, enrol, make_user
from tests.oidc.device_client import DeviceClient, HttpTransport
from tests.site.test_browser_a11y import code_step, serious_violations, sign_in
from tests.twofactor.test_browser_security_keys import add_key_from_security, open_page, usb_key

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
T0 = 1_900_000_005.0
__all__ = ["open_page"]  # the fixture, used by name


def start(base: str) -> DeviceClient:
    cli, _secret = flows.create_client("keyfob-ssh", [], device=True, public=True)
    device_client = DeviceClient(HttpTransport(base), cli.client_id)
    started = device_client.start()
    assert started.status == 200, started.body
    return device_client


def to_approval(page: Any, device_client: DeviceClient) -> None:
    """Open verification_uri_complete: the code is there; Continue shows the approval."""
    page.goto(device_client.started["verification_uri_complete"])
    page.get_by_role("heading", name="Enter the code shown on your device").wait_for()
    field = page.get_by_label("Code shown on your device")
    assert field.input_value() == device_client.started["user_code"]
    assert serious_violations(page) == [], "device code page"
    page.get_by_role("button", name="Continue").click()


def test_sign_in_open_the_link_approve_then_the_tool_gets_tokens(
    open_page: Any, live_server: Any
) -> None:
    base = live_server.url
    carol = enrol(make_user("carol@example.com"))
    page = open_page()
    with clock.frozen(T0):
        device_client = start(base)
        assert device_client.poll().error == "authorization_pending"
        sign_in(page, base, "carol@example.com")
        code_step(page, carol)
        to_approval(page, device_client)
        page.get_by_role("heading", name="Let keyfob-ssh on a device sign you in?").wait_for()
        assert page.locator("#device-address").inner_text().startswith("127.0.0.1")
        assert serious_violations(page) == [], "device approval page"
        page.get_by_role("button", name="Approve").click()
        page.get_by_role("heading", name="Device approved").wait_for()
        assert serious_violations(page) == [], "device approved"
    with clock.frozen(T0 + 6):
        got = device_client.poll()
    assert got.status == 200, got.body
    assert got.body["access_token"] and got.body["refresh_token"]
    authorization = Authorization.objects.get(user=carol.user)
    assert authorization.acr == "mfa" and authorization.token_family is not None


def test_deny(open_page: Any, live_server: Any) -> None:
    base = live_server.url
    dan = enrol(make_user("dan@example.com"))
    page = open_page()
    with clock.frozen(T0):
        device_client = start(base)
        sign_in(page, base, "dan@example.com")
        code_step(page, dan)
        to_approval(page, device_client)
        page.get_by_role("button", name="Deny").click()
        page.get_by_role("heading", name="Device denied").wait_for()
    with clock.frozen(T0 + 6):
        assert device_client.poll().error == "access_denied"
    assert not Authorization.objects.exists()


def test_an_account_with_a_key_approves_with_it(open_page: Any, live_server: Any) -> None:
    base = live_server.url
    erin = enrol(make_user("erin@example.com", phone="+33123456789"))
    page = open_page()
    usb_key(page)
    with clock.frozen(T0):
        sign_in(page, base, "erin@example.com")
        code_step(page, erin)
        add_key_from_security(page, "Blue key")
        device_client = start(base)
        # Signed in with a code: approving asks for the key first.
        to_approval(page, device_client)
        page.wait_for_url(re.compile(r"/account/confirm/"))
        page.get_by_text("This change needs your password and your security key.").wait_for()
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm with your security key").click()
        page.get_by_role("heading", name="Let keyfob-ssh on a device sign you in?").wait_for()
        page.get_by_role("button", name="Approve").click()
        page.get_by_role("heading", name="Device approved").wait_for()
    with clock.frozen(T0 + 6):
        got = device_client.poll()
    assert got.status == 200, got.body
    assert Authorization.objects.get(user=erin.user).acr == "phr"
