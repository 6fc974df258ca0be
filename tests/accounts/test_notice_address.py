"""A second address for security notices (issue 24): added with a code sent to it, changed
or removed after a recent confirmation with a notice to both; every security notice is
copied there, never a code; it never signs in."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob.accounts import flows, notice_address
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from tests.conftest import PASSWORD, password_step

SECOND = "alice.backup@other.example"


def add(client: Client, email: str = SECOND) -> None:
    response = client.post("/account/notice-address/", {"email": email})
    assert response.status_code == 302, response.content.decode()
    assert response["Location"] == "/account/notice-address/confirm/"


def mailed_code(to: str) -> str:
    row = Outbox.objects.filter(kind=NoticeKind.NOTICE_EMAIL_CONFIRM, to=to).first()
    assert row is not None
    return notice_address.unseal_notice_code(row.params)


def second_of(user: User) -> str:
    user.refresh_from_db()
    return user.notice_email


def test_added_once_the_code_comes_back_then_every_notice_goes_to_both(
    client: Client, user: User, frozen_time: float
) -> None:
    password_step(client)
    add(client)
    assert second_of(user) == ""
    confirm = Outbox.objects.get(kind=NoticeKind.NOTICE_EMAIL_CONFIRM)
    assert confirm.to == SECOND and notices.SEALED in confirm.params
    assert "never signs in" in notices.render(confirm).text
    code = mailed_code(SECOND)
    response = client.post("/account/notice-address/confirm/", {"code": code})
    assert response["Location"] == "/account/security/"
    assert second_of(user) == SECOND
    told = Outbox.objects.filter(kind=NoticeKind.NOTICE_EMAIL_CHANGED)
    assert sorted(told.values_list("to", flat=True)) == sorted(["alice@example.com", SECOND])
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.NOTICE_EMAIL_CHANGED).exists()
    assert SECOND in client.get("/account/security/").content.decode()

    # A security notice to the sign-in address: a second row, the same facts, to the
    # second address.
    user.refresh_from_db()
    with_ctx = Context(address="198.51.100.1", user_agent="x")
    notices.queue(user, NoticeKind.PASSWORD_CHANGED, with_ctx)
    rows = Outbox.objects.filter(kind=NoticeKind.PASSWORD_CHANGED).order_by("pk")
    assert [r.to for r in rows] == ["alice@example.com", SECOND]
    assert rows[0].params == rows[1].params


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        (NoticeKind.SUPPORT_CODE, {"request": 1, "nonce": "n", "sealed": "s", "hours": 1}),
        (NoticeKind.PASSWORD_RESET_CODE, {"nonce": "n", "sealed": "s", "minutes": 30}),
        (NoticeKind.LOST_EMAIL_CODE, {"nonce": "n", "sealed": "s", "minutes": 30}),
        (NoticeKind.SUPPORT_PROGRESS, {"request": 1, "state": "waiting", "sealed": "s"}),
    ],
)
@pytest.mark.django_db
def test_a_code_never_goes_to_the_second_address(
    user: User, kind: NoticeKind, params: dict[str, object]
) -> None:
    User.objects.filter(pk=user.pk).update(notice_email=SECOND)
    user.refresh_from_db()
    notices.queue(user, kind, Context(), **params)
    assert list(Outbox.objects.values_list("to", flat=True)) == ["alice@example.com"]


@pytest.mark.django_db
def test_a_notice_to_another_address_is_not_copied(user: User) -> None:
    # The old address's copy of "your address changed" is for it alone.
    User.objects.filter(pk=user.pk).update(notice_email=SECOND)
    user.refresh_from_db()
    notices.queue(user, NoticeKind.EMAIL_CHANGED, Context(), to="old@example.com", old="o", new="n")
    assert list(Outbox.objects.values_list("to", flat=True)) == ["old@example.com"]


def test_the_second_address_never_signs_in_nor_gets_a_reset_code(
    client: Client, user: User, frozen_time: float
) -> None:
    User.objects.filter(pk=user.pk).update(notice_email=SECOND)
    assert not Client().login(username=SECOND, password=PASSWORD)
    response = Client().post("/login/reset/", {"email": SECOND})
    assert response.status_code == 302
    row = Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET_CODE)
    assert row.user is None and row.params["known"] is False  # no account uses it


def test_changing_and_removing_need_a_recent_confirmation_and_tell_both(
    client: Client, user: User, frozen_time: float
) -> None:
    User.objects.filter(pk=user.pk).update(notice_email=SECOND)
    client.force_login(user)  # signed in, but not just now
    response = client.post("/account/notice-address/remove/")
    assert response["Location"].startswith("/account/confirm/")
    response = client.get("/account/notice-address/")
    assert response["Location"].startswith("/account/confirm/")
    assert second_of(user) == SECOND
    with pytest.raises(flows.ReauthRequired):
        notice_address.start(_request(client), user, "x@other.example")

    client = Client()  # signed in just now
    password_step(client)
    add(client, "third@other.example")
    client.post("/account/notice-address/confirm/", {"code": mailed_code("third@other.example")})
    assert second_of(user) == "third@other.example"
    told = Outbox.objects.filter(kind=NoticeKind.NOTICE_EMAIL_CHANGED).order_by("to")
    assert sorted(told.values_list("to", flat=True)) == sorted(
        ["alice.backup@other.example", "alice@example.com", "third@other.example"]
    )
    Outbox.objects.all().delete()
    response = client.post("/account/notice-address/remove/")
    assert response["Location"] == "/account/security/"
    assert second_of(user) == ""
    told = Outbox.objects.filter(kind=NoticeKind.NOTICE_EMAIL_CHANGED)
    assert sorted(told.values_list("to", flat=True)) == ["alice@example.com", "third@other.example"]


def _request(client: Client):  # type: ignore[no-untyped-def]
    """A request object carrying ``client``'s session (not recently confirmed)."""
    from django.test import RequestFactory

    request = RequestFactory().post("/")
    request.session = client.session
    return request


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "Enter your e-mail address."),
        ("nope", "Enter a valid e-mail address."),
        ("ALICE@example.com", "This is your sign-in address"),
        ("x" * 250 + "@e.example", "too long"),
    ],
)
def test_junk_gets_a_clear_message_and_sends_nothing(
    client: Client, user: User, frozen_time: float, typed: str, said: str
) -> None:
    password_step(client)
    response = client.post("/account/notice-address/", {"email": typed})
    assert response.status_code == 200 and said in response.content.decode()
    assert not Outbox.objects.filter(kind=NoticeKind.NOTICE_EMAIL_CONFIRM).exists()


def test_a_wrong_code_counts_and_the_last_one_ends_it(
    client: Client, user: User, frozen_time: float
) -> None:
    password_step(client)
    add(client)
    right = mailed_code(SECOND)
    wrong = "12345678" if right != "12345678" else "87654321"
    for left in (4, 3, 2, 1):
        page = client.post("/account/notice-address/confirm/", {"code": wrong}).content.decode()
        assert f"{left} tr" in page
    response = client.post("/account/notice-address/confirm/", {"code": wrong})
    assert response["Location"] == "/account/notice-address/"
    assert second_of(user) == ""
    with clock.frozen(frozen_time):
        assert notice_address.pending(user) is None
