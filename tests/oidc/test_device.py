"""The device authorization grant (RFC 8628) through Django's test client: a tool's client
(tests.oidc.device_client) asks and polls; the person enters the code, then approves or
denies with a recent proof. Junk anywhere gets a protocol error or a message, never a 500,
and nothing is issued."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client as Browser
from oauth2_provider.models import get_access_token_model, get_device_grant_model

from keyfob.accounts import sessions
from keyfob.accounts.models import Factor, User
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.oidc import device, flows
from keyfob.oidc.models import Authorization, DeviceState
from tests.conftest import enrol, make_user, prove_for_client
from tests.oidc.device_client import DeviceClient, DjangoTransport
from tests.twofactor.keys import enrol_key

T0 = 1_900_000_000.0
DeviceGrant = get_device_grant_model()
AccessToken = get_access_token_model()


@pytest.fixture
def cli(db: None) -> Any:
    client, secret = flows.create_client("keyfob-ssh", [], device=True, public=True)
    assert secret == ""
    return client


def tool(cli: Any, **kw: Any) -> DeviceClient:
    return DeviceClient(
        DjangoTransport(Browser(raise_request_exception=False)), cli.client_id, **kw
    )


def person(user: User, *factors: str) -> Browser:
    browser = Browser(raise_request_exception=False)
    browser.force_login(user)
    prove_for_client(browser, user, *factors)
    return browser


def enter(browser: Browser, code: str) -> Any:
    return browser.post("/oidc/device/", {"user_code": code})


def confirm_url(cli: Any, code: str) -> str:
    return f"/oidc/device/confirm/{cli.client_id}/{code}/"


def approve(browser: Browser, cli: Any, code: str, action: str = "approve") -> Any:
    return browser.post(confirm_url(cli, code), {"action": action})


def test_approved_device_gets_tokens_carrying_the_sign_in(cli: Any) -> None:
    user = make_user("alice@example.com")
    with clock.frozen(T0):
        device_client = tool(cli)
        started = device_client.start()
        assert started.status == 200, started.body
        body = started.body
        assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", body["user_code"])
        assert len(body["device_code"]) >= 30
        assert body["verification_uri"] == "http://testserver/oidc/device/"
        assert body["verification_uri_complete"] == (
            "http://testserver/oidc/device/?user_code=" + body["user_code"]
        )
        assert (body["expires_in"], body["interval"]) == (600, 5)
        grant = DeviceGrant.objects.get(device_code=body["device_code"])
        assert grant.keyfob_state.address == "198.51.100.7"
        # Pending, then too fast: slow_down, and the interval grows.
        assert device_client.poll().error == "authorization_pending"
        assert device_client.poll().error == "slow_down"
        assert DeviceGrant.objects.get(pk=grant.pk).interval == 10

        browser = person(user, Factor.APP_CODE)
        page = browser.get(body["verification_uri_complete"].removeprefix("http://testserver"))
        assert page.status_code == 200
        assert body["user_code"] in page.content.decode()
        # Typed in lower case, without the dash: accepted.
        typed = body["user_code"].replace("-", "").lower()
        entered = enter(browser, typed)
        assert entered.status_code == 302
        assert entered["Location"] == confirm_url(cli, body["user_code"])
        shown = browser.get(entered["Location"])
        assert shown.status_code == 200
        text = shown.content.decode()
        assert "keyfob-ssh" in text and "198.51.100.7" in text and "Approve" in text
        done = approve(browser, cli, body["user_code"])
        assert done.status_code == 302 and "/oidc/device/status/" in done["Location"]
        assert "Device approved" in browser.get(done["Location"]).content.decode()

    with clock.frozen(T0 + 11):
        got = device_client.poll()
    assert got.status == 200, got.body
    assert got.body["token_type"] == "Bearer"
    assert {"access_token", "refresh_token"} <= set(got.body)
    # oauthlib's device grant is plain OAuth 2: no ID token, even with scope openid.
    assert "id_token" not in got.body
    authorization = Authorization.objects.get(device_grant__device_code=body["device_code"])
    assert authorization.user == user and authorization.acr == "mfa"
    assert authorization.token_family is not None
    assert [e.kind for e in SecurityEvent.objects.filter(user=user)] == [EventKind.APP_SIGNIN]
    info = Browser().get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {got.body['access_token']}")
    assert info.status_code == 200 and info.json()["sub"] == str(user.pk)
    assert info.json()["acr"] == "mfa"

    # A replayed device code gets nothing more.
    with clock.frozen(T0 + 30):
        again = device_client.poll()
    assert (again.status, again.error) == (400, "invalid_grant")
    assert AccessToken.objects.filter(user=user).count() == 1

    # The refresh token works, and ends with the session that approved.
    refreshed = device_client.transport.post(
        "/oidc/token/",
        {
            "grant_type": "refresh_token",
            "client_id": cli.client_id,
            "refresh_token": got.body["refresh_token"],
        },
    )
    assert refreshed.status == 200, refreshed.body
    sessions.end_sessions(user)
    after = device_client.transport.post(
        "/oidc/token/",
        {
            "grant_type": "refresh_token",
            "client_id": cli.client_id,
            "refresh_token": refreshed.body["refresh_token"],
        },
    )
    assert after.status == 400
    info = Browser().get(
        "/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {refreshed.body['access_token']}"
    )
    assert info.status_code == 401


def test_denied_device_gets_access_denied(cli: Any) -> None:
    user = make_user("bob@example.com")
    with clock.frozen(T0):
        device_client = tool(cli)
        code = device_client.start().body["user_code"]
        browser = person(user, Factor.APP_CODE)
        assert enter(browser, code).status_code == 302
        done = approve(browser, cli, code, "deny")
        assert done.status_code == 302
        assert "Device denied" in browser.get(done["Location"]).content.decode()
        # Decided: the confirm page and the code are no longer usable.
        assert approve(browser, cli, code).status_code == 404
        assert "not right" in enter(browser, code).content.decode()
    with clock.frozen(T0 + 6):
        assert device_client.poll().error == "access_denied"
    assert not Authorization.objects.exists() and not AccessToken.objects.exists()


def test_expired_device_code(cli: Any) -> None:
    user = make_user("carol@example.com")
    with clock.frozen(T0):
        device_client = tool(cli)
        code = device_client.start().body["user_code"]
    with clock.frozen(T0 + 601):
        browser = person(user, Factor.APP_CODE)
        assert "has expired" in enter(browser, code).content.decode()
        answer = device_client.poll()
        assert (answer.status, answer.error) == (400, "expired_token")


def test_session_ended_before_the_poll_gets_access_denied(cli: Any) -> None:
    user = make_user("dan@example.com")
    with clock.frozen(T0):
        device_client = tool(cli)
        code = device_client.start().body["user_code"]
        browser = person(user, Factor.APP_CODE)
        enter(browser, code)
        assert approve(browser, cli, code).status_code == 302
        sessions.end_sessions(user)
    with clock.frozen(T0 + 6):
        assert device_client.poll().error == "access_denied"
    assert not AccessToken.objects.exists()


def test_approval_needs_a_recent_proof_and_the_key_when_the_account_has_one(cli: Any) -> None:
    enrolled = enrol(make_user("erin@example.com"))
    user = enrolled.user
    enrol_key(user, "Blue key")
    with clock.frozen(T0 - 700):
        browser = person(user, Factor.SECURITY_KEY)  # longer ago than KEYFOB_REAUTH_SECONDS
    with clock.frozen(T0):
        device_client = tool(cli)
        code = device_client.start().body["user_code"]
        enter(browser, code)
        shown = browser.get(confirm_url(cli, code))
        assert shown.status_code == 302
        assert shown["Location"].startswith("/account/confirm/?")
        assert "need=key" in shown["Location"]
        refused = approve(browser, cli, code)
        assert refused.status_code == 302 and "need=key" in refused["Location"]
    with clock.frozen(T0 + 1):
        # A fresh code is not enough for an account with a key: still the key.
        prove_for_client(browser, user, Factor.APP_CODE)
        enter(browser, code)
        refused = approve(browser, cli, code)
        assert refused.status_code == 302 and "need=key" in refused["Location"]
        assert DeviceGrant.objects.get(user_code=code).status == DeviceGrant.AUTHORIZATION_PENDING
    with clock.frozen(T0 + 2):
        prove_for_client(browser, user, Factor.SECURITY_KEY)
        enter(browser, code)
        assert browser.get(confirm_url(cli, code)).status_code == 200
        assert approve(browser, cli, code).status_code == 302
        assert DeviceGrant.objects.get(user_code=code).status == DeviceGrant.AUTHORIZED
    assert Authorization.objects.get(user=user).acr == "phr"


def test_a_client_that_needs_a_key_cannot_be_approved_without_one(db: None) -> None:
    cli, _secret = flows.create_client(
        "Root shell", [], device=True, public=True, require_phishing_resistant=True
    )
    user = make_user("fay@example.com")
    with clock.frozen(T0):
        device_client = tool(cli)
        code = device_client.start().body["user_code"]
        browser = person(user, Factor.APP_CODE)
        enter(browser, code)
        page = browser.get(confirm_url(cli, code))
        assert page.status_code == 200
        text = page.content.decode()
        assert 'id="needs-key"' in text and 'value="approve"' not in text
        assert approve(browser, cli, code).status_code == 403
        assert approve(browser, cli, code, "deny").status_code == 302
    with clock.frozen(T0 + 6):
        assert device_client.poll().error == "access_denied"


def test_wrong_user_codes_are_counted_per_account(cli: Any) -> None:
    user = make_user("gus@example.com")
    with clock.frozen(T0):
        code = tool(cli).start().body["user_code"]
        browser = person(user, Factor.APP_CODE)
        for _ in range(device.USER_CODE.free):
            answer = enter(browser, "ABCD-EFGH" if code != "ABCD-EFGH" else "ABCD-EFGJ")
            assert answer.status_code == 200 and "not right" in answer.content.decode()
        # Now even the right code waits.
        held = enter(browser, code)
        assert held.status_code == 200
        assert "Too many wrong codes. Try again in 30 seconds." in held.content.decode()
    with clock.frozen(T0 + 31):
        assert enter(browser, code).status_code == 302


@pytest.mark.parametrize(
    "typed",
    [
        "",
        " ",
        "x" * 41,
        "x" * 5000,
        "ABCD-EFG",
        "ABCD-EFGH1",
        "0OI1-0OI1",
        "ÀBCD-EFGH",
        "<script>",
        "١٢٣٤٥٦٧٨",
    ],
)
def test_junk_user_codes_get_a_message(cli: Any, typed: str) -> None:
    user = make_user("hal@example.com")
    tool(cli).start()
    browser = person(user, Factor.APP_CODE)
    answer = enter(browser, typed)
    assert answer.status_code == 200
    assert 'class="error"' in answer.content.decode()
    assert not DeviceGrant.objects.filter(user__isnull=False).exists()
    # In the URL too.
    assert browser.get("/oidc/device/", {"user_code": typed}).status_code == 200


def test_a_code_in_the_wrong_confirm_url_is_not_found(cli: Any) -> None:
    other, _ = flows.create_client("Other tool", [], device=True, public=True)
    alice, bob = make_user("ann@example.com"), make_user("ben@example.com")
    with clock.frozen(T0):
        code = tool(cli).start().body["user_code"]
        browser = person(alice, Factor.APP_CODE)
        enter(browser, code)
        # Another client's id with this code, another person, garbage: nothing to approve.
        assert approve(browser, other, code).status_code == 404
        assert browser.get(confirm_url(other, code)).status_code == 404
        assert approve(person(bob, Factor.APP_CODE), cli, code).status_code == 404
        assert browser.get(f"/oidc/device/confirm/{cli.client_id}/{'A' * 300}/").status_code == 404
        assert browser.get(f"/oidc/device/status/{cli.client_id}/{code}x/").status_code == 404
        assert approve(browser, cli, code, "maybe").status_code == 400
        assert DeviceGrant.objects.get(user_code=code).status == DeviceGrant.AUTHORIZATION_PENDING
        # Signed out: to the sign-in page first.
        assert Browser().get("/oidc/device/").status_code == 302


def test_junk_at_the_device_and_token_endpoints(cli: Any) -> None:
    web, web_secret = flows.create_client("Panel", ["https://panel.example/cb"])
    other, _ = flows.create_client("Other tool", [], device=True, public=True)
    transport = DjangoTransport(Browser(raise_request_exception=False))

    def start(data: dict[str, str]) -> Any:
        return transport.post("/oidc/device/authorize/", data)

    def refused(answer: Any) -> bool:
        return answer.status in (400, 401) and isinstance(answer.error, str)

    assert refused(start({"client_id": "nope"}))
    assert refused(start({"client_id": "x" * 5000}))
    assert refused(start({"client_id": cli.client_id, "client_secret": "x"}))
    assert start({}).error == "invalid_request"
    assert start({"client_id": cli.client_id, "scope": "openid root"}).error == "invalid_scope"
    # A client registered for the code flow is not a device client.
    assert refused(start({"client_id": web.client_id}))
    authenticated = start({"client_id": web.client_id, "client_secret": web_secret})
    assert (authenticated.status, authenticated.error) == (400, "unauthorized_client")
    browser = Browser(raise_request_exception=False)
    assert browser.post("/oidc/device/authorize/", {"client_id": cli.client_id}).status_code == 400
    assert browser.get("/oidc/device/authorize/").status_code == 405
    flows.revoke_client(other.client_id)
    assert refused(start({"client_id": other.client_id}))
    assert not DeviceGrant.objects.exists()

    device_client = tool(cli)
    device_code = device_client.start().body["device_code"]

    def token(data: dict[str, str]) -> Any:
        return transport.post("/oidc/token/", data)

    grant = "urn:ietf:params:oauth:grant-type:device_code"
    assert token({"grant_type": grant, "client_id": cli.client_id}).error == "invalid_request"
    for junk in ("nope", "x" * 5000, ""):
        answer = token({"grant_type": grant, "client_id": cli.client_id, "device_code": junk})
        assert answer.status == 400 and answer.error in ("invalid_grant", "invalid_request")
    # Another client's poll of this code.
    stolen = token({"grant_type": grant, "client_id": web.client_id, "device_code": device_code})
    assert refused(stolen)
    assert refused(token({"grant_type": grant, "device_code": device_code}))
    wrong = token(
        {"grant_type": "urn:nope", "client_id": cli.client_id, "device_code": device_code}
    )
    assert wrong.error == "unsupported_grant_type"
    assert token({"grant_type": "password", "client_id": cli.client_id}).status == 400
    assert not AccessToken.objects.exists()
    assert DeviceState.objects.get(device_grant__device_code=device_code).redeemed_at is None


def test_verification_uri_from_the_issuer(cli: Any, settings: Any) -> None:
    settings.KEYFOB_OIDC_ISSUER = "https://portal.example/oidc"
    body = tool(cli).start().body
    assert body["verification_uri"] == "https://portal.example/oidc/device/"
    assert body["verification_uri_complete"].startswith("https://portal.example/oidc/device/?")


def test_user_codes() -> None:
    assert device.normalise(" abcd efgh ") == "ABCD-EFGH"
    assert device.normalise("abcd-efgh") == "ABCD-EFGH"
    for bad in ("ABCD-EFG0", "ABCDEFGHJ", "", "ABCD_EFGH", "ＡBCD-EFGH"):
        assert device.normalise(bad) is None


def test_pages_in_french(cli: Any) -> None:
    user = make_user("ines@example.com")
    with clock.frozen(T0):
        code = tool(cli).start().body["user_code"]
        browser = person(user, Factor.APP_CODE)
        french = {"HTTP_ACCEPT_LANGUAGE": "fr-FR,fr;q=0.9"}
        page = browser.get("/oidc/device/", **french).content.decode()
        assert "Saisissez le code affiché sur votre appareil" in page
        wrong = browser.post("/oidc/device/", {"user_code": "ABCD"}, **french).content.decode()
        assert "Ce code n’est pas le bon." in wrong
        browser.post("/oidc/device/", {"user_code": code}, **french)
        shown = browser.get(confirm_url(cli, code), **french).content.decode()
        assert "Laisser keyfob-ssh vous connecter sur un appareil ?" in shown
        assert "Approuver" in shown and "Refuser l’accès" in shown
