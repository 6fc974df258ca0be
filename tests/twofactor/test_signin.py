"""Sign-in: the password step, the code step, the pending marker, next=, sign-out."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from tests.conftest import PASSWORD, Enrolled, password_step

pytestmark = pytest.mark.django_db


def test_login_page_has_the_promised_labels(client: Client) -> None:
    html = client.get("/login/").content.decode()
    assert ">Email</label>" in html and ">Password</label>" in html
    assert ">Sign in</button>" in html


def test_without_2fa_the_password_signs_in(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    response = password_step(client)
    assert response.status_code == 302 and response["Location"] == "/account/security/"
    assert client.get("/account/").status_code == 200
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.SIGNIN_OK).count() == 1


def test_wrong_email_and_wrong_password_read_the_same(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    wrong_password = password_step(client, password="not the password")
    wrong_email = password_step(client, email="nobody@example.com")
    assert wrong_password.status_code == wrong_email.status_code == 200
    message = "The e-mail address or the password is not right."
    assert message in wrong_password.content.decode()
    assert message in wrong_email.content.decode()
    assert "_auth_user_id" not in client.session


def test_code_step_signs_in_once_with_a_new_session_id(
    pending_client: Client, user_with_totp: Enrolled
) -> None:
    before = pending_client.session.session_key
    # Half signed in: no page behind the sign-in opens.
    assert pending_client.get("/account/security/")["Location"].startswith("/login/")
    page = pending_client.get("/login/code/").content.decode()
    assert 'autocomplete="one-time-code"' in page and 'inputmode="numeric"' in page
    assert ">Authentication code</label>" in page and ">Verify</button>" in page
    response = pending_client.post("/login/code/", {"code": user_with_totp.code()})
    assert response.status_code == 302 and response["Location"] == "/account/security/"
    assert pending_client.session.session_key != before
    assert pending_client.get("/account/security/").status_code == 200


def test_the_same_code_works_once(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    code = user_with_totp.code()
    password_step(client)
    assert client.post("/login/code/", {"code": code}).status_code == 302
    other = Client()
    password_step(other)
    response = other.post("/login/code/", {"code": code})
    assert response.status_code == 200
    assert "This code has already been used" in response.content.decode()
    assert "_auth_user_id" not in other.session
    kinds = SecurityEvent.objects.values_list("kind", flat=True)
    assert EventKind.CODE_REUSED in kinds


def test_a_code_with_spaces_is_accepted(pending_client: Client, user_with_totp: Enrolled) -> None:
    code = user_with_totp.code()
    assert (
        pending_client.post("/login/code/", {"code": f"{code[:3]} {code[3:]}"}).status_code == 302
    )


def test_pending_sign_in_expires_after_five_minutes(
    pending_client: Client, user_with_totp: Enrolled
) -> None:
    with clock.frozen(clock.time() + 301):
        response = pending_client.post("/login/code/", {"code": user_with_totp.code()})
        assert response.status_code == 302 and response["Location"] == "/login/"
        assert "_auth_user_id" not in pending_client.session
        assert "took too long" in pending_client.get("/login/").content.decode()


def test_code_page_without_password_step_goes_back_to_login(client: Client) -> None:
    assert client.get("/login/code/")["Location"] == "/login/"
    assert client.post("/login/code/", {"code": "123456"})["Location"] == "/login/"


@pytest.mark.parametrize(
    ("junk", "message"),
    [
        ("", "Enter the code shown in your app."),
        ("abcdef", "digits (0-9) only"),
        ("12345", "The code has 6 digits; you typed 5."),
        ("1234567", "The code has 6 digits; you typed 7."),
        ("١٢٣٤٥٦", "digits (0-9) only"),
        ("１２３４５６", "digits (0-9) only"),
        ("+12345", "digits (0-9) only"),
        ("9" * 10_000, "far too long"),
        ("12\x0034", "Null characters are not allowed."),
    ],
)
def test_junk_codes_get_a_clear_message_and_change_nothing(
    pending_client: Client, user_with_totp: Enrolled, junk: str, message: str
) -> None:
    response = pending_client.post("/login/code/", {"code": junk})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert "_auth_user_id" not in pending_client.session
    # Not a guess at the code: nothing counted, and the right code still works.
    assert not SecurityEvent.objects.filter(kind=EventKind.CODE_WRONG).exists()
    assert pending_client.post("/login/code/", {"code": user_with_totp.code()}).status_code == 302


@pytest.mark.parametrize(
    "junk",
    [
        {"email": "", "password": ""},
        {"email": "not-an-address", "password": "x"},
        {"email": "a" * 10_000 + "@example.com", "password": "x"},
        {"email": "alice@example.com", "password": "p" * 10_000},
        {"email": "alice@example.com\x00", "password": PASSWORD},
        {},
    ],
)
def test_junk_on_the_login_form(client: Client, user, junk: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/login/", junk)
    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "forged",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/x",
    ],
)
def test_next_redirects_only_within_the_site(client: Client, user, forged: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post(f"/login/?next={forged}", {"email": user.email, "password": PASSWORD})
    assert response["Location"] == "/account/security/"


def test_next_within_the_site_survives_the_code_step(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    client.post("/login/?next=/account/", {"email": "alice@example.com", "password": PASSWORD})
    response = client.post("/login/code/", {"code": user_with_totp.code()})
    assert response["Location"] == "/account/"


def test_sign_out_is_a_post(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    password_step(client)
    assert client.get("/logout/").status_code == 405
    assert "_auth_user_id" in client.session
    assert client.post("/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_forms_need_the_csrf_token(user) -> None:  # type: ignore[no-untyped-def]
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/login/", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in strict.session


def test_pages_are_not_cached(client: Client) -> None:
    assert client.get("/login/")["Cache-Control"] == "no-store"


def test_french_from_the_browser(client: Client) -> None:
    html = client.get("/login/", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9").content.decode()
    assert "Se connecter" in html and 'lang="fr"' in html
