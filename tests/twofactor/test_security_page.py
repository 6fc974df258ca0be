"""Account → Security: enable with a QR code and a confirming code, disable, drift."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from keyfob import otp
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor.models import Authenticator
from tests.conftest import PASSWORD, Enrolled, password_step, setup_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client: Client, user, frozen_time: float) -> Client:  # type: ignore[no-untyped-def]
    assert password_step(client).status_code == 302
    return client


def setup_secret(html: str) -> bytes:
    """The secret as a person would type it from the page."""
    match = re.search(r'<code class="secret" id="secret">([A-Z2-7 ]+)</code>', html)
    assert match, "the setup page shows the secret in groups"
    return otp.b32decode_secret(match.group(1))


def test_enable_shows_qr_secret_and_link_then_activates(signed_in: Client, user) -> None:  # type: ignore[no-untyped-def]
    assert (
        "Two-factor authentication is off." in signed_in.get("/account/security/").content.decode()
    )
    # Opening the page only shows the choice; the key is made by the button (a POST).
    first = signed_in.get("/account/security/setup/").content.decode()
    assert ">Create my key</button>" in first and 'id="secret"' not in first
    assert not Authenticator.objects.filter(user=user).exists()
    html = setup_page(signed_in)
    secret = setup_secret(html)
    assert "<svg" in html and "http://www.w3.org/2000/svg" in html
    assert not re.search(r'<img[^>]+src="https?://', html), "no external image service"
    link = re.search(r'href="(otpauth://totp/[^"]+)"', html)
    assert link is not None
    uri = otp.KeyURI.parse(link.group(1).replace("&amp;", "&"))
    assert (uri.secret, uri.issuer, uri.account) == (secret, "Keyfob", "alice@example.com")
    assert (uri.algorithm, uri.digits, uri.period) == ("SHA1", 6, 30)
    for app in ["FreeOTP", "Google Authenticator", "Aegis", "2FAS", "Ente Auth"]:
        assert app in html
    assert ">Activate</button>" in html
    # Reloading keeps the same pending secret.
    assert setup_secret(signed_in.get("/account/security/setup/").content.decode()) == secret

    response = signed_in.post("/account/security/setup/", {"code": otp.totp(secret, clock.time())})
    assert response["Location"] == "/account/security/recovery-codes/"
    page = signed_in.get("/account/security/").content.decode()
    assert "Two-factor authentication is on." in page
    b32 = otp.b32encode_secret(secret)
    assert b32 not in page and otp.format_secret_groups(b32) not in page
    # Once active, the setup page never shows it again (turning 2FA on also ended the
    # re-authentication, made without the new factor: the page first asks for it).
    again = signed_in.get("/account/security/setup/")
    assert again.status_code == 302 and again["Location"].startswith("/account/confirm/")
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.TWOFACTOR_ON).count() == 1


def test_a_wrong_code_does_not_activate(signed_in: Client, user) -> None:  # type: ignore[no-untyped-def]
    secret = setup_secret(setup_page(signed_in))
    wrong = "000000" if otp.totp(secret, clock.time()) != "000000" else "111111"
    response = signed_in.post("/account/security/setup/", {"code": wrong})
    assert response.status_code == 200 and "This code is not right" in response.content.decode()
    assert not Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()


def test_pending_secret_expires_after_ten_minutes(signed_in: Client, user, settings) -> None:  # type: ignore[no-untyped-def]
    # The page needs a recent password (10 minutes by default): keep it recent for the key's
    # 10 minutes to run out first.
    settings.KEYFOB_REAUTH_SECONDS = 3600
    secret = setup_secret(setup_page(signed_in))
    with clock.frozen(clock.time() + 601):
        response = signed_in.post(
            "/account/security/setup/", {"code": otp.totp(secret, clock.time())}
        )
        assert response["Location"] == "/account/security/setup/"
        fresh = setup_secret(signed_in.get("/account/security/setup/").content.decode())
    assert fresh != secret
    assert not Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()


def test_an_expired_key_is_not_shown_and_opening_the_page_makes_none(
    signed_in: Client, user, settings
) -> None:  # type: ignore[no-untyped-def]
    # The page needs a recent password (10 minutes by default): keep it recent for the key's
    # 10 minutes to run out first.
    settings.KEYFOB_REAUTH_SECONDS = 3600
    secret = setup_secret(setup_page(signed_in))
    with clock.frozen(clock.time() + 601):
        html = signed_in.get("/account/security/setup/").content.decode()
        assert 'id="secret"' not in html and ">Create my key</button>" in html
    # The expired key stays until a button (a POST) replaces it.
    assert Authenticator.objects.get(user=user).secret() == secret


def test_a_clock_far_off_is_named(signed_in: Client) -> None:
    secret = setup_secret(setup_page(signed_in))
    slow = otp.totp(secret, clock.time() - 4 * 60)
    response = signed_in.post("/account/security/setup/", {"code": slow})
    assert "clock seems to be about 4 minutes slow" in response.content.decode()
    fast = otp.totp(secret, clock.time() + 3 * 60)
    response = signed_in.post("/account/security/setup/", {"code": fast})
    assert "clock seems to be about 3 minutes fast" in response.content.decode()


@pytest.mark.parametrize("junk", ["", "abc", "12345", "1234567", "٤٥٦٧٨٩", "x" * 10_000])
def test_junk_at_setup_changes_nothing(signed_in: Client, user, junk: str) -> None:  # type: ignore[no-untyped-def]
    setup_page(signed_in)
    response = signed_in.post("/account/security/setup/", {"code": junk})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert not Authenticator.objects.filter(user=user, confirmed_at__isnull=False).exists()


def test_disable_asks_once(client: Client, user_with_totp: Enrolled, frozen_time: float) -> None:
    """The password and code of "Confirm it is you" are the proof turning 2FA off needs: no second
    code within the same minutes (issue 16, "Ask once": before, the page asked for the
    password and a code again, and the code just typed was refused as already used)."""
    password_step(client)
    client.post("/login/code/", {"code": user_with_totp.code()})
    with clock.frozen(frozen_time + 11 * 60):  # the sign-in's proof is stale by now
        assert client.post("/account/security/disable/")["Location"].startswith(
            "/account/confirm/?next="
        )
        assert Authenticator.objects.filter(user=user_with_totp.user).exists()
        code = user_with_totp.code()
        response = client.post(
            "/account/confirm/",
            {"password": PASSWORD, "code": code, "next": "/account/security/disable/"},
        )
        assert response["Location"] == "/account/security/disable/"
        page = client.get("/account/security/disable/").content.decode()
        assert 'name="code"' not in page and 'name="password"' not in page
        response = client.post("/account/security/disable/")
    assert response["Location"] == "/account/security/"
    assert not Authenticator.objects.filter(user=user_with_totp.user).exists()
    assert SecurityEvent.objects.filter(kind=EventKind.TWOFACTOR_OFF).count() == 1


def test_pages_behind_sign_in_redirect(client: Client) -> None:
    for path in ["/account/", "/account/password/", "/account/security/",
                 "/account/security/setup/", "/account/security/disable/"]:  # fmt: skip
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
