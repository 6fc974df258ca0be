""" "I no longer have access to my e-mail address" (issue 24): the customer's request, the
code to the new address, the desk's check and its change of the sign-in address.

The browser journey through real SMTP is in tests/support/test_browser_lost_email.py.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from keyfob.accounts.models import AccountKind, User
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.core.models import Throttle
from keyfob.otp import Throttled
from keyfob.support import flows
from keyfob.support.models import LostEmailClaim, Purpose, Request, State, Step
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor.models import TrustedBrowser
from tests.support.conftest import PASSWORD, SITE, STAFF_CONTEXT, T0, Enrolled, enrolled

CUSTOMER = Context(address="203.0.113.7", user_agent="customer browser")
NEW = "alice@new.example"


def claim(account: str = "alice@example.com", new: str = NEW, lost: str = "nothing") -> Any:
    return flows.start_claim(CUSTOMER, account=account, new_email=new, lost=lost, language="en")


def code_of(claim_row: LostEmailClaim) -> str:
    row = Outbox.objects.get(pk=claim_row.outbox_id)
    return flows.unseal_claim_code(row.params)


def same_form(page: str, new: str) -> str:
    """A page with the address typed and the form's CSRF token left out."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page).replace(new, "NEW")


def sent(kind: NoticeKind) -> list[str]:
    return sorted(Outbox.objects.filter(kind=kind).values_list("to", flat=True))


def approved_request(alice: Enrolled, sam: Enrolled, lost: str = "nothing") -> Request:
    row = claim(lost=lost)
    flows.confirm_claim(row.pk, code_of(row), CUSTOMER, site=SITE)
    req = Request.objects.get(user=alice.user, purpose=Purpose.EMAIL)
    flows.record_call(req.pk, sam.user, "confirmed", "she asked", STAFF_CONTEXT)
    return Request.objects.get(pk=req.pk)


# The request ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_known_and_an_unknown_account_get_the_same_work_and_answer(alice: Enrolled) -> None:
    with clock.frozen(T0):
        known = claim("alice@example.com", "a@new.example")
        unknown = claim("nobody@example.com", "b@new.example")
    assert known.user_id == alice.user.pk and unknown.user_id is None
    mails = Outbox.objects.filter(kind=NoticeKind.LOST_EMAIL_CODE).order_by("to")
    assert [(m.to, m.user_id, sorted(m.params)) for m in mails] == [
        ("a@new.example", None, ["minutes", "nonce", "sealed"]),
        ("b@new.example", None, ["minutes", "nonce", "sealed"]),
    ]
    with clock.frozen(T0 + 60):
        flows.confirm_claim(known.pk, code_of(known), CUSTOMER, site=SITE)
        flows.confirm_claim(unknown.pk, code_of(unknown), CUSTOMER, site=SITE)
    # The new address hears the same words either way; only the known account's own
    # address hears of a request, and only it has one.
    received = Outbox.objects.filter(kind=NoticeKind.LOST_EMAIL_RECEIVED).order_by("to")
    assert [(m.to, m.user_id) for m in received] == [
        ("a@new.example", None),
        ("b@new.example", None),
    ]
    assert received[0].params == received[1].params
    assert sent(NoticeKind.LOST_EMAIL_OPENED) == ["alice@example.com"]
    req = Request.objects.get()
    assert (req.user, req.purpose, req.new_email, req.state) == (
        alice.user,
        Purpose.EMAIL,
        "a@new.example",
        State.OPEN,
    )
    assert req.new_email_confirmed_at is not None


@pytest.mark.django_db
def test_the_phone_number_on_the_profile_names_the_account(alice: Enrolled) -> None:
    with clock.frozen(T0):
        row = claim("+33 1 23 45 67 89")
    assert row.user_id == alice.user.pk
    # A number on two profiles names no one: support could not tell whose it is.
    enrolled("twin@example.com", phone="+33123456789")
    with clock.frozen(T0):
        assert claim("+33123456789", "other@new.example").user_id is None


@pytest.mark.django_db
def test_the_pages_say_the_same_for_an_unknown_account(alice: Enrolled) -> None:
    pages = []
    for account, new in (
        ("alice@example.com", "a@new.example"),
        ("ghost@x.example", "g@new.example"),
    ):
        client = Client(REMOTE_ADDR="203.0.113.9")
        with clock.frozen(T0):
            response = client.post(
                "/support/lost-email/", {"account": account, "new_email": new, "lost": "password"}
            )
            assert (
                response.status_code == 302 and response["Location"] == "/support/lost-email/code/"
            )
            page = client.get("/support/lost-email/code/").content.decode()
            row = LostEmailClaim.objects.get(new_email=new)
            response = client.post("/support/lost-email/code/", {"code": code_of(row)})
            assert response["Location"] == "/support/lost-email/sent/"
            sent_page = client.get("/support/lost-email/sent/").content.decode()
        pages.append(tuple(same_form(p, new) for p in (page, sent_page)))
    assert pages[0] == pages[1]
    assert "Support calls the phone number on the account" in pages[0][1]
    assert "Support never sets a password" in pages[0][1]


JUNK = [
    ({"account": "", "new_email": NEW, "lost": "nothing"}, "Enter the address you lost"),
    ({"account": "not an address", "new_email": NEW, "lost": "nothing"}, "Enter a valid e-mail"),
    ({"account": "a@b@c", "new_email": NEW, "lost": "nothing"}, "Enter a valid e-mail"),
    ({"account": "x" * 300, "new_email": NEW, "lost": "nothing"}, "too long"),
    ({"account": "+33 12", "new_email": NEW, "lost": "nothing"}, "international form"),
    ({"account": "alice@example.com", "new_email": "nope", "lost": "nothing"}, "Enter a valid"),
    ({"account": "alice@example.com", "new_email": "", "lost": "nothing"}, "Enter your e-mail"),
    ({"account": "alice@example.com", "new_email": NEW, "lost": "house"}, "Say whether"),
    ({"account": "alice@example.com", "new_email": NEW}, "Say whether"),
    (
        {"account": "Alice@Example.com", "new_email": "alice@example.com", "lost": "nothing"},
        "another one than the address you lost",
    ),
    ({"account": "alice@example.com\x00", "new_email": NEW, "lost": "nothing"}, "Null characters"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "said"), JUNK)
def test_junk_gets_a_clear_message_and_changes_nothing(
    alice: Enrolled, data: dict[str, str], said: str
) -> None:
    response = Client().post("/support/lost-email/", data)
    assert response.status_code == 200
    assert said in response.content.decode()
    assert not LostEmailClaim.objects.exists()
    assert not Outbox.objects.filter(kind=NoticeKind.LOST_EMAIL_CODE).exists()
    assert not Throttle.objects.filter(key__startswith="lost-email:").exists()


@pytest.mark.django_db
def test_a_wrong_code_says_the_tries_left_and_the_last_one_ends_it(alice: Enrolled) -> None:
    client = Client()
    with clock.frozen(T0):
        client.post(
            "/support/lost-email/",
            {"account": "alice@example.com", "new_email": NEW, "lost": "nothing"},
        )
        row = LostEmailClaim.objects.get()
        right = code_of(row)
        wrong = "00000000" if right != "00000000" else "11111111"
        for left in (4, 3, 2, 1):
            page = client.post("/support/lost-email/code/", {"code": wrong}).content.decode()
            assert f"That is not the code we sent. {left} tr" in page
        response = client.post("/support/lost-email/code/", {"code": wrong})
        assert response["Location"] == "/support/lost-email/"
        with pytest.raises(flows.ClaimLost):
            flows.confirm_claim(row.pk, right, CUSTOMER, site=SITE)
        page = client.post("/support/lost-email/code/", {"code": "12 34"}, follow=True)
    assert "no request is waiting for a code" in page.content.decode()
    assert not Request.objects.exists()
    # The spent code's seal is gone from its notice: a mail sent later shows no code.
    assert "sealed" not in Outbox.objects.get(pk=row.outbox_id).params


@pytest.mark.django_db
def test_throttled_per_account_and_per_new_address(alice: Enrolled) -> None:
    with clock.frozen(T0):
        for i in range(5):
            claim(new=f"n{i}@new.example")
        with pytest.raises(Throttled):
            claim(new="n9@new.example")  # the same account, a sixth time
        # What was typed is counted, not the account found: a phone number has its own
        # count, so the throttle never tells which address and number go together.
        assert claim("+33123456789", "n9@new.example").user_id == alice.user.pk


@pytest.mark.django_db
def test_throttled_by_the_new_address_too(alice: Enrolled) -> None:
    with clock.frozen(T0):
        for i in range(5):
            claim(f"who{i}@example.com", "target@new.example")
        with pytest.raises(Throttled):
            claim("alice@example.com", "target@new.example")
        client = Client()
        page = client.post(
            "/support/lost-email/",
            {"account": "alice@example.com", "new_email": "target@new.example", "lost": "nothing"},
        ).content.decode()
    assert "Too many requests. Try again in" in page
    assert Outbox.objects.filter(kind=NoticeKind.LOST_EMAIL_CODE).count() == 5


# The desk -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_call_then_another_staff_member_changes_the_address(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    user = alice.user
    password_hash = user.password
    with clock.frozen(T0):
        twofactor.trust_browser(user, CUSTOMER)
        req = approved_request(alice, sam)
        assert req.state == State.APPROVED
        with pytest.raises(flows.FourEyes):
            flows.change_address(req.pk, sam.user, "I checked", STAFF_CONTEXT)
        flows.change_address(req.pk, tess.user, "call confirmed", STAFF_CONTEXT)
    user.refresh_from_db()
    assert user.email == NEW
    assert user.password == password_hash  # support never sets the password
    assert not TrustedBrowser.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert twofactor.has_2fa(user)  # the authenticator was not lost
    assert Request.objects.get(pk=req.pk).state == State.COMPLETED
    assert sent(NoticeKind.EMAIL_CHANGED_BY_SUPPORT) == ["alice@example.com", NEW]
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.SUPPORT_EMAIL_CHANGED).exists()
    assert req.events.filter(step=Step.EMAIL_CHANGED, actor=tess.user).exists()
    # The old address signs in no more; the new one does, with the same password.
    assert not Client().login(username="alice@example.com", password=PASSWORD)
    assert Client().login(username=NEW, password=PASSWORD)


@pytest.mark.django_db
def test_sessions_end_when_support_changes_the_address(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    signed_in = Client()
    signed_in.force_login(alice.user)
    assert signed_in.get("/account/").status_code == 200
    with clock.frozen(T0):
        req = approved_request(alice, sam)
        flows.change_address(req.pk, tess.user, "ok", STAFF_CONTEXT)
    assert signed_in.get("/account/").status_code == 302
    detail = req.events.get(step=Step.EMAIL_CHANGED).detail
    assert detail["sessions_ended"] == 1


@pytest.mark.django_db
def test_a_lost_authenticator_goes_in_the_same_case(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    with clock.frozen(T0):
        req = approved_request(alice, sam, lost="both")
        flows.change_address(req.pk, tess.user, "ok", STAFF_CONTEXT)
    assert not twofactor.has_2fa(alice.user)
    mail = Outbox.objects.filter(kind=NoticeKind.EMAIL_CHANGED_BY_SUPPORT).first()
    assert mail is not None and mail.params["twofactor_off"] is True
    assert Outbox.objects.filter(kind=NoticeKind.TWOFACTOR_OFF, to=NEW).exists()


@pytest.mark.django_db
def test_documents_from_the_new_address_approve_without_a_code(
    sam: Enrolled, tess: Enrolled
) -> None:
    boss = enrolled("boss@acme.example", phone="+33198765432", kind=AccountKind.COMPANY)
    with clock.frozen(T0):
        row = claim("boss@acme.example", "boss@acme-new.example")
        flows.confirm_claim(row.pk, code_of(row), CUSTOMER, site=SITE)
        req = Request.objects.get(user=boss.user)
        flows.record_call(req.pk, sam.user, "no_answer", "", STAFF_CONTEXT)
        assert sorted(sent(NoticeKind.LOST_EMAIL_PROGRESS)) == [
            "boss@acme-new.example",
            "boss@acme.example",
        ]
        with pytest.raises(flows.WrongPurpose):
            flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
        for kind in req.required_documents():
            flows.verify_document(req.pk, sam.user, kind, "seen", STAFF_CONTEXT)
        req.refresh_from_db()
        assert req.state == State.APPROVED
        assert set(req.documents.values_list("received_from", flat=True)) == {
            "boss@acme-new.example"
        }
        with pytest.raises(flows.WrongPurpose):
            flows.disable(req.pk, tess.user, "no", STAFF_CONTEXT)
        flows.change_address(req.pk, tess.user, "documents", STAFF_CONTEXT)
    boss.user.refresh_from_db()
    assert boss.user.email == "boss@acme-new.example"


@pytest.mark.django_db
def test_an_address_taken_meanwhile_changes_nothing(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    with clock.frozen(T0):
        req = approved_request(alice, sam)
        User.objects.create_user(NEW, PASSWORD)
        with pytest.raises(flows.AddressTaken):
            flows.change_address(req.pk, tess.user, "ok", STAFF_CONTEXT)
    alice.user.refresh_from_db()
    assert alice.user.email == "alice@example.com"
    assert Request.objects.get(pk=req.pk).state == State.APPROVED
    assert not Outbox.objects.filter(kind=NoticeKind.EMAIL_CHANGED_BY_SUPPORT).exists()


@pytest.mark.django_db
def test_the_real_holder_denies_on_the_phone(alice: Enrolled, sam: Enrolled) -> None:
    with clock.frozen(T0):
        row = claim()
        flows.confirm_claim(row.pk, code_of(row), CUSTOMER, site=SITE)
        req = Request.objects.get(user=alice.user)
        flows.record_call(req.pk, sam.user, "denied", "not her", STAFF_CONTEXT)
    assert Request.objects.get(pk=req.pk).state == State.REJECTED
    assert sent(NoticeKind.LOST_EMAIL_PROGRESS) == ["alice@example.com", NEW]
    assert not Outbox.objects.filter(kind=NoticeKind.SUPPORT_REJECTED).exists()


def test_the_desk_pages_show_the_change_of_address(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    from tests.support.conftest import client_for

    with clock.frozen(T0):
        req = approved_request(alice, sam)
        page = client_for(tess.user).get(f"/support/{req.pk}/").content.decode()
        assert "Asked: change the sign-in address" in page
        assert f"New address: {NEW}" in page
        mine = client_for(sam.user).get(f"/support/{req.pk}/").content.decode()
        assert "another staff member must change the address" in mine
        response = client_for(tess.user).post(f"/support/{req.pk}/address/", {"address-reason": ""})
        assert response.status_code == 200 and "Write a short note." in response.content.decode()
        response = client_for(tess.user).post(
            f"/support/{req.pk}/address/", {"address-reason": "call ok"}, follow=True
        )
    assert "The sign-in address is changed." in response.content.decode()
    alice.user.refresh_from_db()
    assert alice.user.email == NEW


test_the_desk_pages_show_the_change_of_address = pytest.mark.django_db(
    test_the_desk_pages_show_the_change_of_address
)


# One code, two submissions at once ------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_code_submitted_twice_at_once_opens_one_request() -> None:
    enrolled("alice@example.com", phone="+33123456789")
    with clock.frozen(T0):
        row = claim()
    code = code_of(row)
    barrier = threading.Barrier(2, timeout=30)
    results: list[Any] = [None, None]

    def submit(i: int) -> None:
        try:
            with clock.frozen(T0 + 5):
                barrier.wait()
                flows.confirm_claim(row.pk, code, CUSTOMER, site=SITE)
                results[i] = "opened"
        except BaseException as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(map(type, results), key=str) == sorted([str, flows.ClaimLost], key=str), results
    assert Request.objects.count() == 1
    assert Outbox.objects.filter(kind=NoticeKind.LOST_EMAIL_OPENED).count() == 1
    assert Outbox.objects.filter(kind=NoticeKind.LOST_EMAIL_RECEIVED).count() == 1


@pytest.mark.django_db
def test_changing_twice_or_too_early_says_why(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    from tests.support.conftest import client_for

    with clock.frozen(T0):
        row = claim()
        flows.confirm_claim(row.pk, code_of(row), CUSTOMER, site=SITE)
        req = Request.objects.get(user=alice.user)
        early = client_for(tess.user).post(
            f"/support/{req.pk}/address/", {"address-reason": "too soon"}, follow=True
        )
        assert "only be changed once the identity check has passed" in early.content.decode()
        flows.record_call(req.pk, sam.user, "confirmed", "", STAFF_CONTEXT)
        flows.change_address(req.pk, tess.user, "ok", STAFF_CONTEXT)
        again = client_for(tess.user).post(
            f"/support/{req.pk}/address/", {"address-reason": "again"}, follow=True
        )
    assert "already changed for this request" in again.content.decode()
    assert Outbox.objects.filter(kind=NoticeKind.EMAIL_CHANGED_BY_SUPPORT).count() == 2


@pytest.mark.django_db
def test_prune_activity_deletes_expired_requests_and_their_sealed_codes(alice: Enrolled) -> None:
    from django.core.management import call_command

    with clock.frozen(T0):
        old = claim()
    with clock.frozen(T0 + 3600):
        fresh = claim(new="other@new.example")
        call_command("prune-activity")
    assert list(LostEmailClaim.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert "sealed" not in Outbox.objects.get(pk=old.outbox_id).params
    assert "sealed" in Outbox.objects.get(pk=fresh.outbox_id).params


@pytest.mark.django_db
def test_the_lost_authenticator_page_names_a_change_of_address_in_progress(
    alice: Enrolled,
) -> None:
    from tests.conftest import password_step

    with clock.frozen(T0):
        row = claim()
        flows.confirm_claim(row.pk, code_of(row), CUSTOMER, site=SITE)
        client = Client()
        password_step(client)
        page = client.get("/support/request/").content.decode()
        client.post("/support/request/", {"message": "also this"})
    assert f"A request to change your sign-in address to {NEW} is in progress." in page
    assert "Your request is open." not in page
    assert Request.objects.filter(user=alice.user).count() == 1
