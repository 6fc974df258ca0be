"""The customer's side of a request to support: its page says in words where the request is,
what to send where and what comes next; each change of state is e-mailed."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from keyfob.accounts.flows import mask_phone
from keyfob.audit import notices
from keyfob.audit.models import NoticeKind, Outbox
from keyfob.core import clock
from keyfob.support import flows
from keyfob.support.models import Request
from tests.support.conftest import PASSWORD, SITE, STAFF_CONTEXT, T0, Enrolled, enrolled

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen() -> object:
    with clock.frozen(T0):
        yield T0


def page_text(client: Client) -> str:
    html = client.get("/support/request/").content.decode()
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def asked(client: Client, email: str) -> Request:
    client.post("/login/", {"email": email, "password": PASSWORD})
    client.post("/support/request/", {"message": "lost my phone"})
    return Request.objects.get(user__email=email)


def progress(state: str) -> str:
    row = Outbox.objects.filter(kind=NoticeKind.SUPPORT_PROGRESS).order_by("-pk")[0]
    assert row.params["state"] == state
    return notices.render(row).text


def test_a_phone_number_is_masked_but_recognisable() -> None:
    assert mask_phone("+33612345642") == "+33 6 •• •• •• 42"
    assert mask_phone("+4915112345678") == "+49 1 •• •• •• •• 78"


def test_the_phone_path_in_words(client: Client, alice: Enrolled, sam: Enrolled) -> None:
    req = asked(client, "alice@example.com")
    text = page_text(client)
    assert "We will call +33 1 •• •• •• 89, the phone number in your profile" in text
    assert "What happens next" in text
    flows.record_call(req.pk, sam.user, "confirmed", "it is her", STAFF_CONTEXT)
    assert "We have checked that the request comes from you." in page_text(client)
    mail = progress("approved")
    assert "has checked that your request" in mail and "you will get an e-mail" in mail


def test_the_documents_path_in_words(client: Client, sam: Enrolled) -> None:
    acme = enrolled("boss@acme.example", phone="+33198765432", kind="company")
    req = asked(client, "boss@acme.example")
    flows.record_call(req.pk, sam.user, "no_answer", "voicemail", STAFF_CONTEXT)
    text = page_text(client)
    assert "We could not reach you at +33 1 •• •• •• 32." in text
    assert (
        "Send these documents from boss@acme.example to support@example.com: "
        "Registration extract (in France, the Kbis) Proof of identity of the manager"
    ) in text
    assert "We will also e-mail a code to boss@acme.example" in text
    mail = progress("waiting")
    assert "Send these documents from this address to support@example.com:" in mail
    assert "- Registration extract (in France, the Kbis)" in mail

    flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    assert "Read us the code we e-mailed to boss@acme.example" in page_text(client)
    assert acme.user.pk == req.user_id


def test_without_a_phone_the_customer_is_told_the_documents_path(
    client: Client, sam: Enrolled
) -> None:
    enrolled("nophone@example.com")
    client.post("/login/", {"email": "nophone@example.com", "password": PASSWORD})
    before = page_text(client)
    assert "Your profile has no phone number, so support cannot call you." in before
    assert "Send these documents from nophone@example.com to support@example.com: " in before
    assert "support calls" not in before
    client.post("/support/request/", {"message": ""})
    text = page_text(client)
    assert "Your profile has no phone number, so we cannot call you." in text
    assert "Proof of identity" in text


def test_a_cancelled_request_is_e_mailed_and_shown(
    client: Client, alice: Enrolled, sam: Enrolled
) -> None:
    req = asked(client, "alice@example.com")
    flows.cancel(req.pk, STAFF_CONTEXT, staff=sam.user, reason="duplicate")
    assert "is cancelled. Nothing was changed" in progress("cancelled")
    text = page_text(client)
    assert "Your last request: Cancelled" in text
    assert "Ask support to turn off two-factor authentication" in text  # may ask again


def test_every_change_of_state_reaches_the_customer(alice: Enrolled, sam: Enrolled) -> None:
    tess = enrolled("tess@support.example", is_staff=True)
    req = flows.open_request(alice.user, STAFF_CONTEXT, site=SITE, staff=sam.user)
    flows.record_call(req.pk, sam.user, "confirmed", "ok", STAFF_CONTEXT)
    flows.disable(req.pk, tess.user, "checked", STAFF_CONTEXT)
    kinds = list(
        Outbox.objects.filter(user=alice.user).order_by("pk").values_list("kind", "params")
    )
    told = [(k, p.get("state") or p.get("by")) for k, p in kinds if k != NoticeKind.TWOFACTOR_ON]
    assert told == [
        (NoticeKind.SUPPORT_OPENED, "support"),
        (NoticeKind.SUPPORT_PROGRESS, "approved"),
        (NoticeKind.TWOFACTOR_OFF, "support"),
    ]
