"""Changing the sign-in address: a code e-mailed to the new address, typed back, before
anything changes; then both addresses are told."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob.accounts import flows
from keyfob.accounts.models import EmailChange, User
from keyfob.audit import notices
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor.models import TrustedBrowser
from tests.conftest import Enrolled, emailed_code, password_step

NEW = "alice.new@example.com"


def start(client: Client, user: User, email: str = NEW) -> None:
    response = client.post("/account/email/", {"email": email})
    assert response.status_code == 302 and response["Location"] == "/account/email/confirm/"


def confirm(client: Client, code: str):  # type: ignore[no-untyped-def]
    return client.post("/account/email/confirm/", {"code": code})


def email_of(user: User) -> str:
    user.refresh_from_db()
    return user.email


def wrong(code: str) -> str:
    return "12345678" if code != "12345678" else "87654321"


def test_the_address_changes_only_once_the_code_comes_back(
    client: Client, user: User, frozen_time: float
) -> None:
    password_step(client)
    start(client, user)
    assert email_of(user) == "alice@example.com"
    row = Outbox.objects.get(kind=NoticeKind.EMAIL_CONFIRM)
    assert row.to == NEW and notices.SEALED in row.params
    text = notices.render(row).text
    assert "type this code" in text and row.address not in text  # no whereabouts to a stranger
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.EMAIL_CODE_SENT).exists()
    page = client.get("/account/email/confirm/").content.decode()
    assert NEW in page and "Code from the e-mail" in page

    code = emailed_code(user)
    response = confirm(client, f"{code[:4]} {code[4:]}")  # as the e-mail groups it
    assert response["Location"] == "/account/"
    assert email_of(user) == NEW
    told = Outbox.objects.filter(kind=NoticeKind.EMAIL_CHANGED)
    assert set(told.values_list("to", flat=True)) == {"alice@example.com", NEW}
    # Spent: the code leaves the outbox, and the page has nothing left to confirm.
    assert notices.SEALED not in Outbox.objects.get(pk=row.pk).params
    assert client.get("/account/email/confirm/")["Location"] == "/account/email/"


def test_wrong_codes_count_and_the_fifth_ends_the_change(client: Client, user: User) -> None:
    password_step(client)
    start(client, user)
    code = emailed_code(user)
    for left in (4, 3, 2, 1):
        page = confirm(client, wrong(code)).content.decode()
        assert f"{left} tr" in page and 'role="alert"' in page
    response = confirm(client, wrong(code))
    assert response["Location"] == "/account/email/"
    assert confirm(client, code)["Location"] == "/account/email/"  # too late, even right
    assert email_of(user) == "alice@example.com"
    assert notices.SEALED not in Outbox.objects.get(kind=NoticeKind.EMAIL_CONFIRM).params


def test_a_code_expires_and_a_new_request_replaces_the_old_code(
    client: Client, user: User, frozen_time: float
) -> None:
    password_step(client)
    start(client, user)
    first = emailed_code(user)
    with clock.frozen(frozen_time + 20 * 60):  # still there, and the session still alive
        assert client.get("/account/email/confirm/").status_code == 200
    with clock.frozen(frozen_time + flows.EMAIL_CODE_MINUTES * 60 + 1):
        assert confirm(client, first)["Location"] == "/account/email/"
        assert email_of(user) == "alice@example.com"
    password_step(client)
    start(client, user)
    second = emailed_code(user)
    start(client, user, "alice.other@example.com")  # changed their mind
    third = emailed_code(user)
    if second != third:  # 1 chance in 10**8 that they are the same
        assert "not the code we sent" in confirm(client, second).content.decode()
    assert confirm(client, third)["Location"] == "/account/"
    assert email_of(user) == "alice.other@example.com"


def test_an_address_taken_meanwhile_is_refused(client: Client, user: User) -> None:
    password_step(client)
    start(client, user)
    code = emailed_code(user)
    User.objects.create_user(NEW, "another long password")
    assert confirm(client, code)["Location"] == "/account/email/"
    assert email_of(user) == "alice@example.com"


@pytest.mark.parametrize("junk", ["", "abcdefgh", "1234", "١٢٣٤٥٦٧٨", "1" * 500, "12345678\x00"])
def test_junk_codes_change_nothing_and_cost_no_try(client: Client, user: User, junk: str) -> None:
    password_step(client)
    start(client, user)
    response = confirm(client, junk)
    assert response.status_code == 200 and 'role="alert"' in response.content.decode()
    assert email_of(user) == "alice@example.com"
    assert EmailChange.objects.get(user=user).tries == 0


def test_the_confirm_page_needs_a_change_waiting(client: Client, user: User) -> None:
    assert client.get("/account/email/confirm/")["Location"].startswith("/login/")
    password_step(client)
    assert client.get("/account/email/confirm/")["Location"] == "/account/email/"
    assert confirm(client, "12345678")["Location"] == "/account/email/"


def test_the_change_still_revokes_trusted_browsers(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    from tests.twofactor.test_hotp_trust_activity import signed_in_with_code

    signed_in_with_code(client, user_with_totp, trust="on")
    assert TrustedBrowser.objects.filter(revoked_at=None).count() == 1
    start(client, user_with_totp.user)
    assert confirm(client, emailed_code(user_with_totp.user))["Location"] == "/account/"
    assert TrustedBrowser.objects.filter(revoked_at=None).count() == 0


def test_the_code_goes_out_in_the_accounts_language(client: Client, user: User) -> None:
    User.objects.filter(pk=user.pk).update(language="fr")
    password_step(client)
    start(client, user)
    code = emailed_code(user)
    rendered = notices.render(Outbox.objects.get(kind=NoticeKind.EMAIL_CONFIRM))
    assert rendered.subject.endswith("Confirmez votre nouvelle adresse e-mail")
    assert "saisissez ce code" in rendered.text and f"{code[:4]} {code[4:]}" in rendered.text
    assert f"{code[:4]} {code[4:]}" in rendered.html
