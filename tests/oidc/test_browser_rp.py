"""A relying party nobody here wrote (Authlib, tests/oidc/rp.py) signs people in through
Keyfob, in real headless Chromium: the consent page, remembered consent, the Security
page's "Apps that can sign you in", refresh and userinfo, ``acr_values=phr`` answered by
Chrome's virtual authenticator, ``max_age=0`` and ``prompt=login``, ``prompt=none``'s
errors, and RP-initiated logout. Keyfob is pytest-django's live server
(http://localhost:PORT, the security keys' relying party id); the app is on 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from keyfob.accounts.models import SignIn
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.oidc import flows
from keyfob.oidc.models import Authorization, Client, Consent
from tests.conftest import PASSWORD, Enrolled, enrol, make_user
from tests.oidc.rp import RelyingParty
from tests.site.test_browser_a11y import serious_violations
from tests.twofactor.passkeys import register
from tests.twofactor.test_browser_passkeys import plug

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

APP = "Webmail"
CONFIRM = re.compile(r"/account/confirm/")


@pytest.fixture
def base(live_server: Any) -> str:
    assert re.fullmatch(r"http://localhost:\d+", live_server.url)
    return str(live_server.url)


@pytest.fixture
def rp(base: str) -> Iterator[RelyingParty]:
    """The test app, registered as a confidential client that is not first-party (so it
    asks for consent), with its logout landing page."""
    app = RelyingParty(base)
    client, secret = flows.create_client(
        APP, [app.redirect_uri], post_logout_redirect_uris=[app.logged_out_uri]
    )
    app.client_id, app.client_secret = client.client_id, secret
    app.start()
    yield app
    app.stop()


def password(page: Any, email: str) -> None:
    """Keyfob's sign-in page (the app sent the browser there): e-mail and password."""
    page.wait_for_url(re.compile(r"/login/\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def code(page: Any, who: Enrolled) -> None:
    """The code step, with the authenticator app's code (``?app=1``: even where the page
    offers the account's security key first)."""
    page.wait_for_url(re.compile(r"/login/code/"))
    if page.get_by_role("button", name="Use your security key").count():
        page.goto(page.url + ("&" if "?" in page.url else "?") + "app=1")
    page.get_by_label("Authentication code").fill(who.code())
    page.get_by_role("button", name="Verify").click()


def confirm_with_code(page: Any, who: Enrolled) -> None:
    page.wait_for_url(CONFIRM)
    page.get_by_role("heading", name="Confirm it is you").wait_for()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authentication code").fill(who.code())
    page.get_by_role("button", name="Confirm").click()


def allow(page: Any) -> None:
    page.get_by_role("heading", name=f"Let {APP} sign you in?").wait_for()
    assert serious_violations(page) == []
    page.get_by_role("button", name="Allow").click()


def at_app(page: Any, rp: RelyingParty, count: int) -> Any:
    """The browser is back at the app, which has now seen ``count`` answers; the last."""
    try:
        page.wait_for_url(re.compile(re.escape(rp.url) + r"/(callback|logged-out)"))
    except Exception:
        raise AssertionError(page.url + "\n" + page.inner_text("body")) from None
    page.locator("#rp").wait_for()
    assert len(rp.results) == count, [r.params for r in rp.results]
    assert rp.last.problem == "", rp.last
    return rp.last


# (a) password + code, consent, remembered, removed -------------------------------------


def test_code_account_signs_in_through_the_app_and_removing_it_asks_again(
    page: Any, base: str, rp: RelyingParty
) -> None:
    carol = enrol(make_user("carol@example.com", display_name="Carol Martin"))
    before = int(time.time())
    page.goto(f"{rp.url}/login")
    password(page, "carol@example.com")
    code(page, carol)
    page.wait_for_url(re.compile(r"/oidc/authorize/"))
    assert "carol@example.com" in page.locator("#authorize").inner_text()
    allow(page)
    got = at_app(page, rp, 1)
    claims = got.claims
    # Authlib checked the signature (JWKS), iss, aud, exp, iat, the nonce and at_hash;
    # the RP checked the state and RFC 9207's iss.
    assert claims["sub"] == str(carol.user.pk)
    assert claims["email"] == "carol@example.com" and claims["email_verified"] is True
    assert claims["name"] == "Carol Martin"
    assert claims["acr"] == "mfa"
    assert sorted(claims["amr"]) == ["mfa", "otp", "pwd"]
    assert before - 5 <= claims["auth_time"] <= int(time.time()) + 5
    assert "nonce" in claims and got.params["state"]
    assert Consent.objects.filter(user=carol.user).count() == 1
    assert SecurityEvent.objects.filter(user=carol.user, kind=EventKind.APP_ALLOWED).count() == 1

    # A second visit: remembered, no consent page (straight back to the app).
    page.goto(f"{rp.url}/login")
    second = at_app(page, rp, 2)
    assert second.claims["acr"] == "mfa" and second.claims["nonce"] != claims["nonce"]

    # The Security page lists the app; removing it needs "Confirm it is you".
    page.goto(f"{base}/account/security/")
    section = page.locator("#apps")
    row = section.locator("tbody tr", has_text=APP)
    row.wait_for()
    assert serious_violations(page) == []
    with clock.shifted(700):  # past KEYFOB_REAUTH_SECONDS, and a new code step
        row.get_by_role("button", name=f"Remove {APP}").click()
        confirm_with_code(page, carol)
        # Once confirmed, the Remove it asked for is applied (no second press).
        page.wait_for_url(re.compile(r"/account/security/"))
        page.get_by_text(f"{APP} can no longer sign you in.").wait_for()
        assert page.locator("#apps tbody tr").count() == 0
        assert not Consent.objects.filter(user=carol.user).exists()
        # The app's refresh token is revoked: its refresh fails.
        assert rp.refresh(second.token["refresh_token"]).error == "invalid_grant"
        assert rp.refresh(got.token["refresh_token"]).error == "invalid_grant"
        # The next sign-in asks again.
        page.goto(f"{rp.url}/login")
        allow(page)
        third = at_app(page, rp, 3)
    assert third.claims["sub"] == str(carol.user.pk)


# (b) refresh (rotated) and userinfo through Authlib ------------------------------------


def test_refresh_rotates_and_userinfo_answers(page: Any, base: str, rp: RelyingParty) -> None:
    dave = enrol(make_user("dave@example.com", display_name="Dave"))
    page.goto(f"{rp.url}/login")
    password(page, "dave@example.com")
    code(page, dave)
    allow(page)
    got = at_app(page, rp, 1)
    first = got.token
    fresh = rp.refresh(first["refresh_token"])
    assert fresh.error == "", fresh
    assert fresh.token["refresh_token"] != first["refresh_token"]
    assert fresh.token["access_token"] != first["access_token"]
    assert fresh.claims["sub"] == str(dave.user.pk) and fresh.claims["acr"] == "mfa"
    assert fresh.claims["auth_time"] == got.claims["auth_time"]  # no new sign-in
    info = rp.userinfo(fresh.token)
    assert info.status_code == 200, info.text
    claims = info.json()
    assert sorted(claims.pop("amr")) == ["mfa", "otp", "pwd"]
    assert claims == {
        "sub": str(dave.user.pk),
        "email": "dave@example.com",
        "email_verified": True,
        "name": "Dave",
        "acr": "mfa",
    }
    # The rotated-out token is refused, and its reuse revokes the family.
    assert rp.refresh(first["refresh_token"]).error == "invalid_grant"
    assert rp.refresh(fresh.token["refresh_token"]).error == "invalid_grant"
    assert rp.userinfo(first).status_code == 401


# (c) acr_values=phr ---------------------------------------------------------------------


def test_phr_asks_a_code_session_for_its_key(page: Any, base: str, rp: RelyingParty) -> None:
    erin = enrol(make_user("erin@example.com"))
    soft, _key = register(erin.user, resident=False)
    plug(page, soft, transport="usb", resident_key=False)
    page.goto(f"{rp.url}/login")
    password(page, "erin@example.com")
    code(page, erin)
    allow(page)
    assert at_app(page, rp, 1).claims["acr"] == "mfa"
    # The app now wants a phishing-resistant sign-in: the key, on "Confirm it is you".
    page.goto(f"{rp.url}/login?acr_values=phr")
    page.wait_for_url(CONFIRM)
    assert "need=key" in page.url
    page.get_by_text("This change needs your password and your security key.").wait_for()
    assert serious_violations(page) == []
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm with your security key").click()
    got = at_app(page, rp, 2)
    assert got.claims["acr"] == "phr"
    assert "hwk" in got.claims["amr"] and "mfa" in got.claims["amr"]


def test_phr_without_a_key_says_how_and_the_app_gets_access_denied(
    page: Any, base: str, rp: RelyingParty
) -> None:
    frank = enrol(make_user("frank@example.com"))
    page.goto(f"{rp.url}/login?acr_values=phr")
    password(page, "frank@example.com")
    code(page, frank)
    page.get_by_role("heading", name="This app needs a security key").wait_for()
    assert serious_violations(page) == []
    page.get_by_role("link", name=f"Back to {APP} without signing in").click()
    got = at_app(page, rp, 1)
    assert got.error == "access_denied" and not got.token
    assert SecurityEvent.objects.filter(user=frank.user, kind=EventKind.APP_REFUSED).count() == 1
    assert not Authorization.objects.filter(user=frank.user).exists()


# (d) max_age=0 and prompt=login ------------------------------------------------------


@pytest.mark.parametrize("ask", ["max_age=0", "prompt=login"])
def test_asking_for_a_fresh_sign_in_confirms_again(
    page: Any, base: str, rp: RelyingParty, ask: str
) -> None:
    gina = enrol(make_user("gina@example.com"))
    page.goto(f"{rp.url}/login")
    password(page, "gina@example.com")
    code(page, gina)
    allow(page)
    first = at_app(page, rp, 1).claims["auth_time"]
    with clock.shifted(60):  # a later code step, and a later confirmation
        page.goto(f"{rp.url}/login?{ask}")
        confirm_with_code(page, gina)
        got = at_app(page, rp, 2)
    assert got.claims["auth_time"] >= first + 50
    assert got.claims["acr"] == "mfa"


# (e) prompt=none ---------------------------------------------------------------------


def test_prompt_none_signed_out_says_login_required(page: Any, rp: RelyingParty) -> None:
    enrol(make_user("hugo@example.com"))
    page.goto(f"{rp.url}/login?prompt=none")
    got = at_app(page, rp, 1)
    assert got.error == "login_required"


def test_prompt_none_without_consent_says_consent_required(
    page: Any, base: str, rp: RelyingParty
) -> None:
    ines = enrol(make_user("ines@example.com"))
    page.goto(f"{base}/login/?next=/account/")
    page.get_by_label("Email").fill("ines@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    code(page, ines)
    page.wait_for_url(re.compile(r"/account/"))
    page.goto(f"{rp.url}/login?prompt=none")
    got = at_app(page, rp, 1)
    assert got.error == "consent_required"
    # Once allowed, prompt=none answers with a code.
    page.goto(f"{rp.url}/login")
    allow(page)
    at_app(page, rp, 2)
    page.goto(f"{rp.url}/login?prompt=none")
    assert at_app(page, rp, 3).claims["acr"] == "mfa"


# (f) RP-initiated logout -------------------------------------------------------------


def test_rp_initiated_logout_signs_out_and_revokes(page: Any, base: str, rp: RelyingParty) -> None:
    jane = enrol(make_user("jane@example.com"))
    page.goto(f"{rp.url}/login")
    password(page, "jane@example.com")
    code(page, jane)
    allow(page)
    got = at_app(page, rp, 1)
    page.goto(rp.logout_url(got.token["id_token"], "bye-st4te"))
    page.get_by_role("heading", name="Sign out of Keyfob?").wait_for()
    assert APP in page.locator("main").inner_text()
    assert serious_violations(page) == []
    page.locator("#logout-form").get_by_role("button", name="Sign out").click()
    back = at_app(page, rp, 2)
    assert back.path == "logged-out" and back.params == {"state": "bye-st4te"}
    assert SignIn.objects.filter(user=jane.user, ended_at__isnull=True).count() == 0
    assert rp.refresh(got.token["refresh_token"]).error == "invalid_grant"
    # Signed out of Keyfob: the app's next sign-in starts at the password.
    page.goto(f"{rp.url}/login")
    page.wait_for_url(re.compile(r"/login/\?next="))


def test_staying_signed_in_keeps_the_session(page: Any, base: str, rp: RelyingParty) -> None:
    kim = enrol(make_user("kim@example.com"))
    page.goto(f"{rp.url}/login")
    password(page, "kim@example.com")
    code(page, kim)
    allow(page)
    got = at_app(page, rp, 1)
    page.goto(rp.logout_url(got.token["id_token"], "st4y"))
    page.locator("#logout-form").get_by_role("button", name="Stay signed in").click()
    page.get_by_role("heading", name="You are still signed in").wait_for()
    assert serious_violations(page) == []
    assert SignIn.objects.filter(user=kim.user, ended_at__isnull=True).count() == 1
    assert rp.refresh(got.token["refresh_token"]).error == ""


def test_a_first_party_app_goes_from_the_code_step_straight_back(
    page: Any, base: str, rp: RelyingParty
) -> None:
    """No consent page: the code step's form leads, through the authorization endpoint, to
    the app (a redirect Chromium's form-action 'self' would stop: Keyfob hands over through
    a page of its own)."""
    Client.objects.filter(client_id=rp.client_id).update(skip_authorization=True)
    lena = enrol(make_user("lena@example.com"))
    page.goto(f"{rp.url}/login")
    password(page, "lena@example.com")
    code(page, lena)
    got = at_app(page, rp, 1)
    assert got.claims["acr"] == "mfa"
    page.goto(f"{base}/account/security/")
    page.locator("#apps").wait_for()
    assert page.locator("#apps tbody tr").count() == 0  # first-party: not listed


# Issue 27: a grant whose rule the session does not meet is absent from the token ----------


def test_a_key_rule_grant_appears_only_after_a_key_sign_in(
    page: Any, base: str, rp: RelyingParty, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyfob.teams.models import Grant, Rule
    from tests.oidc import rp as rp_module

    monkeypatch.setattr(rp_module, "SCOPE", "openid email profile grants")
    owner = make_user("owner@example.com")
    member = enrol(make_user("member@example.com"))
    Grant.objects.create(owner=owner, member=member.user, rights=["billing"], rule=Rule.KEY)
    soft, _key = register(member.user, resident=False)
    plug(page, soft, transport="usb", resident_key=False)
    page.goto(f"{rp.url}/login")
    password(page, "member@example.com")
    code(page, member)
    allow(page)
    first = at_app(page, rp, 1)
    assert first.claims["acr"] == "mfa"
    assert first.claims["keyfob_grants"] == []  # waits for a security key: nothing
    # The same person proves the key ("Confirm it is you", asked by acr_values=phr).
    page.goto(f"{rp.url}/login?acr_values=phr")
    page.wait_for_url(CONFIRM)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm with your security key").click()
    second = at_app(page, rp, 2)
    assert second.claims["acr"] == "phr"
    assert second.claims["keyfob_grants"] == [
        {"account": str(owner.pk), "name": owner.display_name, "rights": ["billing"]}
    ]
