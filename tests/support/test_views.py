"""The console's and the customer's pages over HTTP: who gets in, what bad input gets."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from keyfob.accounts.models import User
from keyfob.audit.models import NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.support import flows
from keyfob.support.models import Request, State
from keyfob.twofactor import flows as twofactor
from tests.support.conftest import PASSWORD, SITE, STAFF_CONTEXT, T0, Enrolled, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen() -> object:
    with clock.frozen(T0):
        yield T0


def text(response: object) -> str:
    return response.content.decode()  # type: ignore[attr-defined]


def messages_of(response: object) -> str:
    return " ".join(str(m) for m in response.context["messages"])  # type: ignore[attr-defined]


STAFF_GETS = ["/support/", "/support/new/", "/support/{pk}/"]
STAFF_POSTS = [
    "/support/{pk}/call/",
    "/support/{pk}/documents/identity/",
    "/support/{pk}/code/send/",
    "/support/{pk}/code/check/",
    "/support/{pk}/disable/",
    "/support/{pk}/cancel/",
]


@pytest.fixture
def req(alice: Enrolled) -> Request:
    return flows.open_request(alice.user, STAFF_CONTEXT, site=SITE)


# Who gets in ---------------------------------------------------------------------------


def test_a_signed_out_visitor_is_sent_to_sign_in(client: Client, req: Request) -> None:
    for url in STAFF_GETS + STAFF_POSTS:
        response = client.post(url.format(pk=req.pk))
        assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Request.objects.get().state == State.OPEN


def test_a_customer_gets_no_support_page(alice: Enrolled, req: Request) -> None:
    customer = client_for(alice.user)
    for url in STAFF_GETS:
        assert customer.get(url.format(pk=req.pk)).status_code == 404
    for url in STAFF_POSTS:
        assert (
            customer.post(url.format(pk=req.pk), {"call-outcome": "confirmed"}).status_code == 404
        )
    assert Request.objects.get().state == State.OPEN


def test_staff_without_2fa_are_sent_to_set_it_up(req: Request, settings: Any) -> None:
    """With KEYFOB_STAFF_PHISHING_RESISTANT off (on: tests/support/test_staff_rule.py)."""
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False
    staff = User.objects.create_user("new@support.example", PASSWORD, is_staff=True)
    client = client_for(staff, phishing_resistant=False)
    for url in STAFF_GETS + STAFF_POSTS:
        response = client.post(url.format(pk=req.pk), {"call-outcome": "confirmed"})
        assert response.status_code == 302 and response["Location"] == "/account/security/setup/"
    assert Request.objects.get().state == State.OPEN


def test_staff_with_2fa_see_the_console(sam_client: Client, req: Request) -> None:
    listing = sam_client.get("/support/")
    assert listing.status_code == 200 and "alice@example.com" in text(listing)
    page = sam_client.get(f"/support/{req.pk}/")
    assert page.status_code == 200
    body = text(page)
    for shown in ["+33123456789", "Alice", "Individual", "Proof of identity", "Call",
                  "Record the call", "Request opened"]:  # fmt: skip
        assert shown in body
    assert sam_client.get("/support/999/").status_code == 404
    assert sam_client.post("/support/999/call/", {"call-outcome": "confirmed"}).status_code == 404
    assert sam_client.get(f"/support/{req.pk}/call/").status_code == 405


def test_the_list_filters_by_state_and_searches_by_email(
    sam_client: Client, req: Request, acme: Enrolled, sam: Enrolled
) -> None:
    other = flows.open_request(acme.user, STAFF_CONTEXT, site=SITE, staff=sam.user)
    flows.record_call(other.pk, sam.user, "no_answer", "", STAFF_CONTEXT)
    open_tab = text(sam_client.get("/support/"))
    assert "alice@example.com" in open_tab and "boss@acme.example" not in open_tab
    waiting = text(sam_client.get("/support/?state=waiting"))
    assert "boss@acme.example" in waiting and "alice@example.com" not in waiting
    assert "alice@" not in text(sam_client.get("/support/?state=open&q=acme"))
    assert sam_client.get("/support/?state=nonsense&q=" + "x" * 300).status_code == 200


def test_a_staff_member_cannot_act_on_their_own_account(
    sam: Enrolled, tess: Enrolled, sam_client: Client
) -> None:
    response = sam_client.post(
        "/support/new/", {"email": "SAM@support.example", "channel": "email", "note": ""}
    )
    assert "You cannot act on a request for your own account" in text(response)
    req = flows.open_request(sam.user, STAFF_CONTEXT, site=SITE, staff=tess.user)
    page = text(sam_client.get(f"/support/{req.pk}/"))
    assert "This is your own account" in page and "Record the call" not in page
    response = sam_client.post(
        f"/support/{req.pk}/call/", {"call-outcome": "confirmed", "call-note": ""}, follow=True
    )
    assert "You cannot act on a request for your own account" in messages_of(response)
    assert Request.objects.get(pk=req.pk).state == State.OPEN


# Staff steps: bad input and out-of-order steps get a message, never a 500 ------------------


def test_staff_open_a_request(sam_client: Client, alice: Enrolled) -> None:
    empty = sam_client.post("/support/new/", {})
    assert "Enter the account&#x27;s e-mail address." in text(empty)
    unknown = sam_client.post("/support/new/", {"email": "nobody@example.com", "channel": "email"})
    assert "No account has this e-mail address." in text(unknown)
    bad = sam_client.post("/support/new/", {"email": "alice@example.com", "channel": "fax"})
    assert "Select a valid choice" in text(bad)
    done = sam_client.post(
        "/support/new/",
        {"email": "alice@example.com", "channel": "phone", "note": "called at 9:05"},
        follow=True,
    )
    req = Request.objects.get()
    assert done.redirect_chain[-1][0] == f"/support/{req.pk}/"
    assert req.channel == "phone" and req.opened_by is not None
    assert Outbox.objects.filter(user=alice.user, kind=NoticeKind.SUPPORT_OPENED).count() == 1
    again = sam_client.post(
        "/support/new/", {"email": "alice@example.com", "channel": "email"}, follow=True
    )
    assert "already has a request in progress" in messages_of(again)
    assert Request.objects.count() == 1
    without = User.objects.create_user("bob@example.com", PASSWORD)
    response = sam_client.post("/support/new/", {"email": without.email, "channel": "email"})
    assert "does not use two-factor authentication" in text(response)


def test_bad_input_on_each_step(sam_client: Client, req: Request) -> None:
    url = f"/support/{req.pk}/"
    response = sam_client.post(url + "call/", {"call-outcome": "maybe"})
    assert response.status_code == 200 and "Select a valid choice" in text(response)
    response = sam_client.post(url + "call/", {})
    assert "Choose the outcome of the call." in text(response)
    response = sam_client.post(
        url + "call/", {"call-outcome": "no_answer", "call-note": "x" * 2000}
    )
    assert "Keep the note under 1000 characters." in text(response)
    assert Request.objects.get().state == State.OPEN
    sam_client.post(url + "call/", {"call-outcome": "no_answer"})
    response = sam_client.post(url + "documents/identity/", {"doc-identity-note": "passport"})
    assert "Tick the box once the document is received and verified." in text(response)
    response = sam_client.post(url + "documents/identity/", {"doc-identity-verified": "on"})
    assert "Write a short note." in text(response)
    assert sam_client.post(url + "documents/passport/", {}).status_code == 404
    response = sam_client.post(url + "documents/registration/", {
        "doc-registration-verified": "on", "doc-registration-note": "x"}, follow=True)  # fmt: skip
    assert "not one asked for this kind of account" in messages_of(response)
    for typed, error in [("1234", "The code has 8 digits; you typed 4."),
                         ("١٢٣٤٥٦٧٨", "The code is made of digits (0-9) only."),
                         ("", "Enter the code the customer read back.")]:  # fmt: skip
        response = sam_client.post(url + "code/check/", {"code-code": typed})
        assert error in text(response)
    response = sam_client.post(url + "code/check/", {"code-code": "1234 5678"}, follow=True)
    assert "No code has been sent yet." in messages_of(response)
    response = sam_client.post(url + "disable/", {"disable-reason": ""})
    assert "Write a short note." in text(response)


def test_out_of_order_steps_say_why(sam_client: Client, tess_client: Client, req: Request) -> None:
    url = f"/support/{req.pk}/"
    response = tess_client.post(url + "disable/", {"disable-reason": "now"}, follow=True)
    assert "only be disabled once the identity check has passed" in messages_of(response)
    assert "This request is: Open." in messages_of(response)
    response = sam_client.post(url + "code/send/", follow=True)
    assert "Documents and the e-mailed code come after a call" in messages_of(response)
    sam_client.post(url + "call/", {"call-outcome": "denied", "call-note": "not them"})
    response = sam_client.post(url + "call/", {"call-outcome": "confirmed"}, follow=True)
    assert "A call can only be recorded while" in messages_of(response)
    assert "This request is: Rejected." in messages_of(response)
    response = sam_client.post(url + "cancel/", {"cancel-reason": "dup"}, follow=True)
    assert "Only a request in progress can be cancelled." in messages_of(response)
    assert Request.objects.get().state == State.REJECTED


def test_four_eyes_in_the_console(
    alice: Enrolled, sam_client: Client, tess_client: Client, req: Request
) -> None:
    url = f"/support/{req.pk}/"
    sam_client.post(url + "call/", {"call-outcome": "confirmed", "call-note": "it was her"})
    page = text(sam_client.get(url))
    assert "another staff member must disable" in page
    response = sam_client.post(url + "disable/", {"disable-reason": "mine"}, follow=True)
    assert "another staff member must disable" in messages_of(response)
    assert twofactor.has_2fa(alice.user)
    response = tess_client.post(url + "disable/", {"disable-reason": "lost phone"}, follow=True)
    assert "Two-factor authentication is off for this account." in messages_of(response)
    response = tess_client.post(url + "disable/", {"disable-reason": "again"}, follow=True)
    assert "already disabled for this request" in messages_of(response)
    assert not twofactor.has_2fa(alice.user)


# The customer's side -------------------------------------------------------------------


def test_the_request_page_needs_a_right_password_first(client: Client, alice: Enrolled) -> None:
    page = client.get("/support/request/")
    assert page.status_code == 200
    assert "support@example.com" in text(page) and "alice" not in text(page)
    client.post("/support/request/", {"message": "please"})
    assert not Request.objects.exists()
    # A wrong password gives the same page: nothing says whether the account exists.
    client.post("/login/", {"email": "alice@example.com", "password": "wrong"})

    def without_token(html: str) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)

    assert without_token(text(client.get("/support/request/"))) == without_token(text(page))


def test_the_customer_opens_a_request_after_the_password(client: Client, alice: Enrolled) -> None:
    response = client.post("/login/", {"email": "alice@example.com", "password": PASSWORD})
    assert response["Location"] == "/login/code/"
    code_page = text(client.get("/login/code/"))
    assert 'href="/support/request/"' in code_page and "support@example.com" in code_page
    form = client.get("/support/request/")
    assert "Use a recovery code" in text(form)
    assert "Ask support to turn off two-factor authentication" in text(form)
    too_long = client.post("/support/request/", {"message": "x" * 1001})
    assert "Keep the note under 1000 characters." in text(too_long)
    done = client.post("/support/request/", {"message": "call me after 6pm"}, follow=True)
    assert "Your request is sent to support." in messages_of(done)
    assert "Your request is open." in text(done)
    req = Request.objects.get()
    assert (req.user, req.channel, req.opened_by, req.note) == (
        alice.user, "signin", None, "call me after 6pm")  # fmt: skip
    assert SecurityEvent.objects.filter(user=alice.user, kind="support_opened").exists()
    notice = Outbox.objects.get(kind=NoticeKind.SUPPORT_OPENED)
    assert notice.params["by"] == "user" and notice.address == "127.0.0.1"
    # Twice: still one request.
    client.post("/support/request/", {"message": "again"})
    assert Request.objects.count() == 1
    # Still half-signed-in: the request changes nothing about that.
    assert client.get("/account/security/").status_code == 302


def test_writing_the_request_outlasts_the_code_step(client: Client, alice: Enrolled) -> None:
    """The code step gives up after 5 minutes; the request page waits an hour, so a long
    message is not lost (before: refused at 301 s)."""
    client.post("/login/", {"email": "alice@example.com", "password": PASSWORD})
    with clock.frozen(T0 + 20 * 60):
        response = client.post("/support/request/", {"message": "took my time"}, follow=True)
    assert "Your request is sent to support." in messages_of(response)
    assert Request.objects.get().note == "took my time"


def test_after_the_hour_the_message_is_shown_back(client: Client, alice: Enrolled) -> None:
    client.post("/login/", {"email": "alice@example.com", "password": PASSWORD})
    with clock.frozen(T0 + 3601):
        response = client.post("/support/request/", {"message": "a long story"}, follow=True)
    assert "Your sign-in took too long." in messages_of(response)
    assert "Your message was not sent." in text(response) and "a long story" in text(response)
    assert not Request.objects.exists()
