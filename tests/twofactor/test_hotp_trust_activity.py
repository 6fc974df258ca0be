"""Counter-based codes, trusted browsers, the activity list, re-authentication, staff."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor.decorators import staff_required
from keyfob.twofactor.models import Authenticator, TrustedBrowser
from tests.conftest import PASSWORD, Enrolled, emailed_code, password_step, setup_page

pytestmark = pytest.mark.django_db


def signed_in_with_code(client: Client, enrolled: Enrolled, **extra: str) -> None:
    password_step(client)
    response = client.post("/login/code/", {"code": enrolled.code(), **extra})
    assert response.status_code == 302, response.content.decode()[:500]


# Counter-based -----------------------------------------------------------------------


def test_hotp_setup_sign_in_look_ahead_and_counter(
    client: Client, user: User, frozen_time: float
) -> None:
    password_step(client)
    html = setup_page(client, "hotp")
    link = re.search(r'href="(otpauth://hotp/[^"]+)"', html)
    assert link is not None
    uri = otp.KeyURI.parse(link.group(1).replace("&amp;", "&"))
    assert uri.kind == "hotp" and uri.counter == 0
    response = client.post("/account/security/setup/", {"code": otp.hotp(uri.secret, 0)})
    assert response["Location"] == "/account/security/recovery-codes/"
    auth = Authenticator.objects.get(user=user)
    assert auth.kind == "hotp" and auth.counter == 1

    # Look-ahead: the app was pressed a few times without signing in.
    client.post("/logout/")
    password_step(client)
    assert client.post("/login/code/", {"code": otp.hotp(uri.secret, 7)}).status_code == 302
    auth.refresh_from_db()
    assert auth.counter == 8
    # Codes at or below a used counter, and beyond the look-ahead, are refused.
    client.post("/logout/")
    password_step(client)
    for counter in (7, 3, 8 + 11):
        response = client.post("/login/code/", {"code": otp.hotp(uri.secret, counter)})
        assert response.status_code == 200
    auth.refresh_from_db()
    assert auth.counter == 8


def shown_key(html: str) -> str:
    match = re.search(r'id="secret">([A-Z2-7 ]+)<', html)
    assert match, "the setup page shows the key"
    return match.group(1)


def test_switching_setup_kind_makes_a_new_secret(client: Client, user: User) -> None:
    password_step(client)
    totp_page = setup_page(client)
    hotp_page = setup_page(client, "hotp")
    assert "otpauth://totp/" in totp_page and "otpauth://hotp/" in hotp_page
    assert shown_key(totp_page) != shown_key(hotp_page)
    assert shown_key(setup_page(client, "hotp")) == shown_key(hotp_page)  # same kind, same key
    junk = client.post("/account/security/setup/", {"kind": "sha1\x00"})
    assert junk["Location"] == "/account/security/setup/"
    # an unknown kind changes nothing
    assert shown_key(client.get("/account/security/setup/").content.decode()) == shown_key(
        hotp_page
    )


def test_opening_the_setup_page_changes_nothing(client: Client, user: User) -> None:
    password_step(client)
    key = shown_key(setup_page(client, "hotp"))
    pk = Authenticator.objects.get(user=user).pk
    # A GET, with or without ?kind= (the way it was once chosen), never replaces the key.
    for url in ["/account/security/setup/", "/account/security/setup/?kind=totp"]:
        html = client.get(url).content.decode()
        assert shown_key(html) == key and "otpauth://hotp/" in html
    assert Authenticator.objects.get(user=user).pk == pk


# Trusted browsers --------------------------------------------------------------------


def test_a_trusted_browser_skips_the_code_but_not_the_password(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    signed_in_with_code(client, user_with_totp, trust="on")
    cookie = client.cookies["keyfob-trust"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    first_token = cookie.value
    client.post("/logout/")
    # Wrong password: the trust does not help.
    response = password_step(client, password="wrong password")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = password_step(client)
    assert response["Location"] == "/account/security/"
    assert "_auth_user_id" in client.session
    # The token was replaced: a copy of the old cookie no longer works.
    assert client.cookies["keyfob-trust"].value != first_token
    thief = Client()
    thief.cookies["keyfob-trust"] = first_token
    assert password_step(thief)["Location"] == "/login/code/"
    kinds = list(SecurityEvent.objects.values_list("kind", flat=True))
    assert EventKind.TRUSTED_ADDED in kinds and EventKind.SIGNIN_TRUSTED in kinds


def test_trust_expires_after_thirty_days(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    signed_in_with_code(client, user_with_totp, trust="on")
    client.post("/logout/")
    with clock.frozen(frozen_time + 31 * 86400):
        assert password_step(client)["Location"] == "/login/code/"


def test_revoke_one_and_all_and_on_password_change(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    signed_in_with_code(client, user_with_totp, trust="on")
    page = client.get("/account/security/").content.decode()
    assert "Revoke all" in page
    browser = TrustedBrowser.objects.get()
    response = client.post(f"/account/security/browsers/{browser.pk}/revoke/")
    assert response["Location"] == "/account/security/"
    browser.refresh_from_db()
    assert browser.revoked_at is not None
    assert client.get(f"/account/security/browsers/{browser.pk}/revoke/").status_code == 405
    # Another account's browser id changes nothing.
    assert client.post("/account/security/browsers/999999/revoke/").status_code == 302

    with clock.frozen(frozen_time + 30):
        other = Client()
        signed_in_with_code(other, user_with_totp, trust="on")
        response = other.post(
            "/account/password/",
            {"new_password1": "a new long passphrase 7",
             "new_password2": "a new long passphrase 7"},
        )  # fmt: skip
        assert response["Location"] == "/account/"
    assert not TrustedBrowser.objects.filter(revoked_at__isnull=True).exists()


# Activity ----------------------------------------------------------------------------


def test_activity_lists_what_happened_in_the_viewers_time_zone(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    password_step(client, password="wrong password")
    password_step(client)
    client.post(
        "/login/code/", {"code": "000000" if user_with_totp.code() != "000000" else "1" * 6}
    )
    client.post(
        "/login/code/",
        {"code": user_with_totp.code()},
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    )
    user_with_totp.user.time_zone = "Asia/Tokyo"
    user_with_totp.user.save()
    page = client.get("/account/security/").content.decode()
    for text in ["Wrong password", "Wrong authentication code", "Signed in", "Firefox · Linux"]:
        assert text in page
    assert "Asia/Tokyo" in page
    local = (clock.now() + timedelta(hours=9)).strftime("%Y-%m-%d %H:%M")
    assert local in page.replace("&nbsp;", " ")


def test_prune_activity_keeps_the_retention(user: User, frozen_time: float) -> None:
    from django.core.management import call_command

    SecurityEvent.objects.create(
        user=user, kind=EventKind.SIGNIN_OK, at=clock.now() - timedelta(days=400)
    )
    SecurityEvent.objects.create(
        user=user, kind=EventKind.SIGNIN_OK, at=clock.now() - timedelta(days=10)
    )
    call_command("prune-activity")
    assert SecurityEvent.objects.count() == 1


# Re-authentication -------------------------------------------------------------------


def test_sensitive_changes_ask_again_after_ten_minutes(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    signed_in_with_code(client, user_with_totp)
    assert client.get("/account/email/").status_code == 200
    with clock.frozen(frozen_time + 11 * 60):
        for path_ in ["/account/email/", "/account/password/", "/account/security/disable/",
                      "/account/security/recovery-codes/new/"]:  # fmt: skip
            response = client.get(path_)
            assert response.status_code == 302
            assert response["Location"].startswith("/account/confirm/?next=")
        page = client.get("/account/confirm/?next=/account/email/").content.decode()
        assert ">Password</label>" in page and ">Authentication code</label>" in page
        response = client.post(
            "/account/confirm/?next=/account/email/", {"password": PASSWORD, "code": "12"}
        )
        assert "6 digits" in response.content.decode()
        response = client.post(
            "/account/confirm/",
            {"password": PASSWORD, "code": user_with_totp.code(), "next": "/account/email/"},
        )
        assert response["Location"] == "/account/email/"
        response = client.post("/account/email/", {"email": "alice.new@example.com"})
        assert response["Location"] == "/account/email/confirm/"
        code = emailed_code(user_with_totp.user)
        response = client.post("/account/email/confirm/", {"code": code})
        assert response["Location"] == "/account/"
    user_with_totp.user.refresh_from_db()
    assert user_with_totp.user.email == "alice.new@example.com"


@pytest.mark.parametrize("junk", ["", "not-an-address", "alice@example.com", "x" * 300 + "@e.com"])
def test_email_change_junk(client: Client, user: User, junk: str) -> None:
    password_step(client)
    response = client.post("/account/email/", {"email": junk})
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    user.refresh_from_db()
    assert user.email == "alice@example.com"


# Staff -------------------------------------------------------------------------------


@staff_required
def staff_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse("staff only")


class StaffURLs:
    from keyfob.site.urls import urlpatterns as _site

    urlpatterns = [*_site, path("staff-probe/", staff_page)]


@override_settings(ROOT_URLCONF=StaffURLs, KEYFOB_STAFF_PHISHING_RESISTANT=False)
def test_staff_without_2fa_are_taken_to_setup(client: Client, user: User) -> None:
    """Any second factor, with the staff rule off (on, the default, staff need a security
    key or passkey: tests/support/test_staff_rule.py)."""
    assert password_step(client).status_code == 302
    assert client.get("/staff-probe/").status_code == 404  # a customer
    user.is_staff = True
    user.save()
    assert client.get("/staff-probe/")["Location"] == "/account/security/setup/"
    auth = Authenticator(user=user, confirmed_at=clock.now())
    auth.set_secret(otp.random_secret())
    auth.save()
    assert client.get("/staff-probe/").content == b"staff only"
