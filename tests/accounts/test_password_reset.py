""" "I forgot my password": a code e-mailed to the address typed, typed back with a new
password. The same answer and the same work whether an account uses the address or not;
single use, 30 minutes, throttled; every session and trusted browser ends; 2FA still asked."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from keyfob.accounts.models import PasswordReset, User
from keyfob.audit import notices
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor.models import TrustedBrowser
from tests.conftest import PASSWORD, Enrolled, password_step

NEW_PASSWORD = "a fresh and long passphrase 42"


def ask(client: Client, email: str = "alice@example.com"):  # type: ignore[no-untyped-def]
    return client.post("/login/reset/", {"email": email})


def finish(client: Client, code: str, password: str = NEW_PASSWORD, again: str | None = None):  # type: ignore[no-untyped-def]
    data = {"code": code, "new_password1": password, "new_password2": again or password}
    return client.post("/login/reset/code/", data)


def mailed_code(to: str = "alice@example.com") -> str:
    row = Outbox.objects.filter(kind=NoticeKind.PASSWORD_RESET_CODE, to=to).order_by("-pk")[0]
    found = re.search(r"^\s+(\d{4}) (\d{4})$", notices.render(row).text, re.MULTILINE)
    assert found, notices.render(row).text
    return found.group(1) + found.group(2)


def wrong(code: str) -> str:
    return "12345678" if code != "12345678" else "87654321"


def test_the_login_page_leads_to_both_ways_out(client: Client, db: None) -> None:
    login = client.get("/login/").content.decode()
    assert 'href="/login/help/"' in login and "Can’t sign in?" in login
    page = client.get("/login/help/").content.decode()
    assert "I forgot my password" in page and "I lost my authenticator" in page
    assert 'href="/login/reset/"' in page and 'href="/support/request/"' in page


def test_a_reset_changes_the_password_ends_sessions_and_tells_the_holder(
    client: Client, user: User, frozen_time: float
) -> None:
    signed_in = Client()
    signed_in.force_login(user)
    assert signed_in.get("/account/").status_code == 200

    response = ask(client)
    assert response["Location"] == "/login/reset/code/"
    row = PasswordReset.objects.get()
    assert row.user == user and len(row.digest) == 64  # only a keyed digest is kept
    code = mailed_code()
    assert code not in row.digest and code not in str(Outbox.objects.get().params)
    page = client.get("/login/reset/code/").content.decode()
    assert "If an account uses alice@example.com, we e-mailed a code to it." in page

    response = finish(client, f"{code[:4]} {code[4:]}")
    assert response["Location"] == "/login/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert signed_in.get("/account/").status_code == 302  # that session ended
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.PASSWORD_RESET).exists()
    told = Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET)
    assert told.to == "alice@example.com"
    assert "was reset" in notices.render(told).text
    # Spent: the mail's code is gone and it works no second time.
    assert notices.SEALED not in Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET_CODE).params
    session = client.session
    session["keyfob.reset_email"] = "alice@example.com"
    session.save()
    response = finish(client, code, "another long passphrase 43")
    assert response["Location"] == "/login/reset/"
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_an_unknown_address_gets_the_same_answer_and_the_same_work(
    client: Client, user: User, frozen_time: float
) -> None:
    ask(client)  # warm up: the throttle rows and the reset row of each exist afterwards
    ask(client, "nobody@example.com")
    pages, queries = [], []
    for email in ("alice@example.com", "nobody@example.com"):
        with CaptureQueriesContext(connection) as done:
            response = ask(Client(), email)
        queries.append([q["sql"].split(" ")[0] for q in done.captured_queries])
        assert response["Location"] == "/login/reset/code/"
        pages.append(Client().get(response["Location"]).status_code)
    # The same statements, in the same order: nothing in the timing says which one exists.
    assert queries[0] == queries[1]
    stranger = Outbox.objects.filter(to="nobody@example.com").order_by("-pk")[0]
    text = notices.render(stranger).text
    assert "no account uses it" in text and stranger.address not in text
    assert not re.search(r"\d{4} \d{4}", text)
    # A code "for" an unknown address opens nothing.
    other = Client()
    ask(other, "nobody@example.com")
    response = finish(other, "12345678")
    assert "That is not the code we sent. 4 tries left." in response.content.decode()


def test_wrong_codes_are_counted_and_the_fifth_ends_the_reset(
    client: Client, user: User, frozen_time: float
) -> None:
    ask(client)
    code = mailed_code()
    for left in (4, 3, 2, 1):
        page = finish(client, wrong(code)).content.decode()
        assert f"That is not the code we sent. {left} tr" in page
    response = finish(client, wrong(code))
    assert response["Location"] == "/login/reset/"
    session = client.session
    session["keyfob.reset_email"] = "alice@example.com"
    session.save()
    assert finish(client, code)["Location"] == "/login/reset/"  # the right one, too late
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_the_code_lasts_thirty_minutes(client: Client, user: User, frozen_time: float) -> None:
    ask(client)
    code = mailed_code()
    with clock.frozen(frozen_time + 30 * 60 + 1):
        assert finish(client, code)["Location"] == "/login/reset/"
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_asking_again_replaces_the_code(client: Client, user: User, frozen_time: float) -> None:
    ask(client)
    ask(client)
    second = mailed_code()
    rows = Outbox.objects.filter(kind=NoticeKind.PASSWORD_RESET_CODE).order_by("pk")
    assert notices.SEALED not in rows[0].params  # the first mail's code is wiped
    assert PasswordReset.objects.count() == 1
    assert finish(client, second)["Location"] == "/login/"


def test_requests_are_throttled(client: Client, user: User, frozen_time: float) -> None:
    for _ in range(5):
        assert ask(client)["Location"] == "/login/reset/code/"
    page = ask(client).content.decode()
    assert "Too many requests. Try again in 30 seconds." in page
    assert Outbox.objects.filter(kind=NoticeKind.PASSWORD_RESET_CODE).count() == 5
    # A reset done starts the count again.
    with clock.frozen(frozen_time + 31):
        assert ask(client)["Location"] == "/login/reset/code/"
        assert finish(client, mailed_code())["Location"] == "/login/"
        for _ in range(5):
            assert ask(client)["Location"] == "/login/reset/code/"


@pytest.mark.parametrize(
    ("password", "again", "message"),
    [
        ("short", "short", "This password is too short"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "The two passwords are not the same."),
        ("alice@example.com", "alice@example.com", "too similar to the"),
    ],
)
def test_the_usual_password_rules_apply(
    client: Client, user: User, frozen_time: float, password: str, again: str, message: str
) -> None:
    ask(client)
    code = mailed_code()
    page = finish(client, code, password, again).content.decode()
    assert message in page
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    assert finish(client, code)["Location"] == "/login/"  # a refusal spent nothing


def test_with_2fa_a_reset_never_skips_the_code(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    from keyfob.audit.events import Context
    from keyfob.twofactor import flows

    flows.trust_browser(user_with_totp.user, Context(address="192.0.2.1", user_agent="t"))
    assert TrustedBrowser.objects.filter(revoked_at__isnull=True).count() == 1
    ask(client)
    finish(client, mailed_code())
    assert TrustedBrowser.objects.filter(revoked_at__isnull=True).count() == 0
    response = password_step(client, password=NEW_PASSWORD)
    assert response["Location"] == "/login/code/"  # the second factor is still asked
    assert "_auth_user_id" not in client.session


def test_prune_activity_deletes_expired_resets(
    client: Client, user: User, frozen_time: float
) -> None:
    ask(client)  # the account's: its mail is never sent here, so it keeps its sealed code
    ask(Client(), "nobody@example.com")
    with clock.frozen(frozen_time + 20 * 60):
        ask(Client(), "later@example.com")
    out = io.StringIO()
    with clock.frozen(frozen_time + 30 * 60 + 1):
        call_command("prune-activity", stdout=out)
    assert "deleted 2 expired password resets" in out.getvalue()
    assert list(PasswordReset.objects.values_list("outbox__to", flat=True)) == ["later@example.com"]
    # The expired code left the notice that was still waiting to go.
    first = Outbox.objects.filter(kind=NoticeKind.PASSWORD_RESET_CODE).order_by("pk")[0]
    assert first.to == "alice@example.com" and notices.SEALED not in first.params
    later = Outbox.objects.filter(kind=NoticeKind.PASSWORD_RESET_CODE).order_by("-pk")[0]
    assert notices.SEALED in later.params
