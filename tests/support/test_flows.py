"""The support desk's state machine, its checks and what they leave behind."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connection
from django.test import Client

from keyfob.accounts import proofs
from keyfob.accounts.models import Proof, SignIn
from keyfob.audit import mailer, notices
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.support import flows
from keyfob.support.models import (
    DocumentKind,
    EmailCheck,
    Request,
    State,
    Step,
)
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor.models import Authenticator, RecoveryCode, TrustedBrowser
from tests.conftest import enrol, make_user
from tests.support.conftest import PASSWORD, SITE, STAFF_CONTEXT, T0, Enrolled, client_for, enrolled

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen() -> object:
    with clock.frozen(T0):
        yield T0


def open_for(customer: Enrolled, staff: Enrolled | None = None) -> Request:
    return flows.open_request(
        customer.user, STAFF_CONTEXT, site=SITE, staff=staff.user if staff else None
    )


def code_from_outbox(check: EmailCheck) -> str:
    """Read the code the way the customer does: in the rendered e-mail."""
    row = Outbox.objects.get(pk=check.outbox_id)
    match = re.search(r"^\s+(\d{4}) (\d{4})$", notices.render(row).text, re.MULTILINE)
    assert match, notices.render(row).text
    return match.group(1) + match.group(2)


def waiting_request(customer: Enrolled, staff: Enrolled, *, documents: bool = False) -> Request:
    """A request past an unanswered call; with ``documents``, every document verified."""
    req = open_for(customer, staff)
    flows.record_call(req.pk, staff.user, "no_answer", "voicemail", STAFF_CONTEXT)
    if documents:
        for kind in req.required_documents():
            flows.verify_document(req.pk, staff.user, kind, "seen", STAFF_CONTEXT)
    return req


def state(req: Request) -> str:
    return Request.objects.get(pk=req.pk).state


# The phone path ------------------------------------------------------------------------


def test_confirmed_call_approves_and_another_staff_member_disables(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    twofactor.replace_recovery_codes(alice.user)
    twofactor.trust_browser(alice.user, Context(address="203.0.113.9"))
    signed_in = client_for(alice.user)  # a session of the customer's, somewhere
    other = client_for(sam.user)  # and one of staff, which must survive
    req = open_for(alice, sam)
    flows.record_call(req.pk, sam.user, "confirmed", "Alice answered", STAFF_CONTEXT)
    assert state(req) == State.APPROVED

    with pytest.raises(flows.FourEyes):
        flows.disable(req.pk, sam.user, "lost phone", STAFF_CONTEXT)
    assert state(req) == State.APPROVED and twofactor.has_2fa(alice.user)

    # Issue 17: an account has several authenticator apps; the reset removes them all.
    enrol(alice.user, name="Tablet")
    assert Authenticator.objects.filter(user=alice.user).count() == 2
    flows.disable(req.pk, tess.user, "lost phone", STAFF_CONTEXT)
    assert state(req) == State.COMPLETED
    assert not Authenticator.objects.filter(user=alice.user).exists()
    assert not RecoveryCode.objects.filter(user=alice.user).exists()
    assert not TrustedBrowser.objects.filter(user=alice.user, revoked_at=None).exists()
    assert signed_in.get("/account/security/").status_code == 302  # signed out
    assert other.get("/support/").status_code == 200
    assert Session.objects.count() == 1
    # Issue 21: their sign-in records end, and what their authenticators proved dies.
    assert not SignIn.objects.filter(user=alice.user, ended_at__isnull=True).exists()
    second = Proof.objects.filter(user=alice.user, factor__in=proofs.SECOND_FACTORS)
    assert second.exists() and not second.filter(revoked_at__isnull=True).exists()

    kinds = list(SecurityEvent.objects.filter(user=alice.user).values_list("kind", flat=True))
    for kind in [EventKind.SUPPORT_OPENED, EventKind.SUPPORT_CALL, EventKind.SUPPORT_APPROVED,
                 EventKind.TWOFACTOR_OFF, EventKind.SUPPORT_DISABLED]:  # fmt: skip
        assert kind in kinds
    # Staff's own address is not the customer's to read; it is on the timeline instead.
    assert not SecurityEvent.objects.filter(user=alice.user, address="198.51.100.20").exists()
    steps = list(req.events.values_list("step", "actor__email", "address"))
    assert steps[-1] == (Step.DISABLED, "tess@support.example", "198.51.100.20")
    off = Outbox.objects.get(user=alice.user, kind=NoticeKind.TWOFACTOR_OFF)
    assert off.params == {"by": "support"}
    assert "after checking your identity" in notices.render(off).text


def test_disabling_also_ends_a_sign_in_half_way_through(
    alice: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    half_way = Client()
    answer = half_way.post("/login/", {"email": alice.user.email, "password": PASSWORD})
    assert answer.status_code == 302 and answer["Location"] == "/login/code/"
    req = open_for(alice, sam)
    flows.record_call(req.pk, sam.user, "confirmed", "Alice answered", STAFF_CONTEXT)
    flows.disable(req.pk, tess.user, "lost phone", STAFF_CONTEXT)
    assert not Session.objects.filter(session_key=half_way.session.session_key).exists()
    assert half_way.get("/login/code/")["Location"] == "/login/"


def test_four_eyes_can_be_turned_off(alice: Enrolled, sam: Enrolled, settings: object) -> None:
    settings.KEYFOB_SUPPORT_FOUR_EYES = False  # type: ignore[attr-defined]
    req = open_for(alice, sam)
    flows.record_call(req.pk, sam.user, "confirmed", "", STAFF_CONTEXT)
    flows.disable(req.pk, sam.user, "lost phone", STAFF_CONTEXT)
    assert state(req) == State.COMPLETED


def test_denied_call_rejects_and_tells_the_customer(alice: Enrolled, sam: Enrolled) -> None:
    req = open_for(alice)
    flows.record_call(req.pk, sam.user, "denied", "did not ask", STAFF_CONTEXT)
    assert state(req) == State.REJECTED
    notice = Outbox.objects.get(user=alice.user, kind=NoticeKind.SUPPORT_REJECTED)
    assert "said they had not asked for it" in notices.render(notice).text
    # Out of order from now on: nothing moves.
    for outcome in ["confirmed", "no_answer", "denied"]:
        with pytest.raises(flows.WrongState) as refused:
            flows.record_call(req.pk, sam.user, outcome, "", STAFF_CONTEXT)
        assert refused.value.state == State.REJECTED
    with pytest.raises(flows.WrongState):
        flows.cancel(req.pk, STAFF_CONTEXT)
    assert state(req) == State.REJECTED and twofactor.has_2fa(alice.user)


# The documents + e-mail code path ------------------------------------------------------


def test_documents_and_code_approve(acme: Enrolled, sam: Enrolled, tess: Enrolled) -> None:
    req = waiting_request(acme, sam)
    assert state(req) == State.WAITING
    assert req.required_documents() == (DocumentKind.REGISTRATION, DocumentKind.MANAGER_IDENTITY)
    flows.verify_document(req.pk, sam.user, "registration", "Kbis, March", STAFF_CONTEXT)
    check = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    code = code_from_outbox(check)
    assert flows.check_code(req.pk, sam.user, code, STAFF_CONTEXT) is False  # one doc missing
    assert state(req) == State.WAITING
    flows.verify_document(req.pk, sam.user, "manager_identity", "ID card", STAFF_CONTEXT)
    assert state(req) == State.APPROVED
    approved = req.events.get(step=Step.APPROVED)
    assert approved.detail == {"by": "documents"}
    flows.disable(req.pk, tess.user, "documents and code", STAFF_CONTEXT)
    assert state(req) == State.COMPLETED


def test_the_code_is_stored_hashed_sealed_and_never_logged(
    alice: Enrolled, sam: Enrolled, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    req = waiting_request(alice, sam, documents=True)
    check = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    code = code_from_outbox(check)
    assert re.fullmatch(r"[0-9]{8}", code)
    row = Outbox.objects.get(pk=check.outbox_id)
    assert code not in json.dumps(row.params) and row.params["sealed"].startswith("v1.")

    def dump() -> str:
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
            text = []
            for table in tables:
                cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - our own table names
                text.append(repr(cursor.fetchall()))
        return "\n".join(text)

    assert code not in dump()
    assert flows.check_code(req.pk, sam.user, code, STAFF_CONTEXT) is True
    # Spent: the sealed copy is wiped from the outbox, and a late e-mail says so.
    row.refresh_from_db()
    assert "sealed" not in row.params
    assert "no longer valid" in notices.render(row).text
    assert code not in caplog.text


def test_the_sealed_code_leaves_the_outbox_once_its_notice_is_sent_or_given_up(
    alice: Enrolled, sam: Enrolled, settings: Any
) -> None:
    mailer.send_pending(stream=io.StringIO())  # "2FA is on", from each enrolment
    req = waiting_request(alice, sam)
    check = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    code = code_from_outbox(check)
    printed = io.StringIO()  # without KEYFOB_SMTP_URL the sender prints the mail
    # The request's notice, "waiting for documents" (the call did not reach them), the code.
    assert mailer.send_pending(stream=printed).sent == 3
    assert f"{code[:4]} {code[4:]}" in printed.getvalue()
    assert notices.SEALED not in Outbox.objects.get(pk=check.outbox_id).params
    # The customer reads it back from the e-mail: still the code that works.
    assert flows.check_code(req.pk, sam.user, code, STAFF_CONTEXT) is False  # no document yet

    # An SMTP server that never answers: the last attempt gives up, and the seal goes too.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.KEYFOB_SMTP_URL = f"smtp://127.0.0.1:{port}"
    settings.KEYFOB_MAIL_MAX_ATTEMPTS = 2
    second = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    assert mailer.send_pending().retrying == 1  # a retry keeps it, to be sent later
    assert notices.SEALED in Outbox.objects.get(pk=second.outbox_id).params
    Outbox.objects.filter(pk=second.outbox_id).update(next_attempt_at=clock.now())
    assert mailer.send_pending().failed == 1
    assert notices.SEALED not in Outbox.objects.get(pk=second.outbox_id).params


def test_wrong_codes_count_and_the_fifth_burns(alice: Enrolled, sam: Enrolled) -> None:
    req = waiting_request(alice, sam, documents=True)
    check = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    code = code_from_outbox(check)
    wrong = "00000000" if code != "00000000" else "11111111"
    for left in [4, 3, 2, 1]:
        with pytest.raises(flows.WrongCode) as refused:
            flows.check_code(req.pk, sam.user, wrong, STAFF_CONTEXT)
        assert refused.value.left == left
    with pytest.raises(flows.CodeBurnt):
        flows.check_code(req.pk, sam.user, wrong, STAFF_CONTEXT)
    # Burnt: even the right code is refused now, and the try is not counted again.
    with pytest.raises(flows.CodeBurnt):
        flows.check_code(req.pk, sam.user, code, STAFF_CONTEXT)
    check.refresh_from_db()
    assert check.tries == 5 and check.burnt_at is not None and check.used_at is None
    assert "sealed" not in Outbox.objects.get(pk=check.outbox_id).params
    assert req.events.filter(step=Step.CODE_WRONG).count() == 5
    assert req.events.filter(step=Step.CODE_BURNT).count() == 1
    assert state(req) == State.WAITING
    # A new code works.
    fresh = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    assert flows.check_code(req.pk, sam.user, code_from_outbox(fresh), STAFF_CONTEXT) is True


def test_a_new_code_replaces_the_old_one(alice: Enrolled, sam: Enrolled) -> None:
    req = waiting_request(alice, sam)
    first = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    old = code_from_outbox(first)
    second = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    new = code_from_outbox(second)
    first.refresh_from_db()
    assert first.burnt_at is not None
    assert "sealed" not in Outbox.objects.get(pk=first.outbox_id).params
    if old != new:
        with pytest.raises(flows.WrongCode):
            flows.check_code(req.pk, sam.user, old, STAFF_CONTEXT)
    assert flows.check_code(req.pk, sam.user, new, STAFF_CONTEXT) is False  # no document yet
    with pytest.raises(flows.CodeAlreadyUsed):
        flows.check_code(req.pk, sam.user, new, STAFF_CONTEXT)


def test_the_code_expires_after_24_hours(alice: Enrolled, sam: Enrolled) -> None:
    req = waiting_request(alice, sam, documents=True)
    check = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    code = code_from_outbox(check)
    with clock.frozen(T0 + 24 * 3600 + 1), pytest.raises(flows.CodeExpired):
        flows.check_code(req.pk, sam.user, code, STAFF_CONTEXT)
    with clock.frozen(T0 + 24 * 3600 - 1):
        assert flows.check_code(req.pk, sam.user, code, STAFF_CONTEXT) is True


# Out of order, own account, four eyes --------------------------------------------------


def test_steps_out_of_order_are_refused(alice: Enrolled, sam: Enrolled, tess: Enrolled) -> None:
    req = open_for(alice, sam)
    with pytest.raises(flows.WrongState):
        flows.disable(req.pk, tess.user, "too early", STAFF_CONTEXT)
    with pytest.raises(flows.WrongState):
        flows.verify_document(req.pk, sam.user, "identity", "before the call", STAFF_CONTEXT)
    with pytest.raises(flows.WrongState):
        flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    with pytest.raises(flows.WrongState):
        flows.check_code(req.pk, sam.user, "12345678", STAFF_CONTEXT)
    assert state(req) == State.OPEN and twofactor.has_2fa(alice.user)

    flows.record_call(req.pk, sam.user, "no_answer", "", STAFF_CONTEXT)
    with pytest.raises(flows.NoCode):
        flows.check_code(req.pk, sam.user, "12345678", STAFF_CONTEXT)
    with pytest.raises(flows.DocumentNotRequired):
        flows.verify_document(req.pk, sam.user, "registration", "not for a person", STAFF_CONTEXT)
    flows.verify_document(req.pk, sam.user, "identity", "passport", STAFF_CONTEXT)
    with pytest.raises(flows.DocumentAlreadyVerified):
        flows.verify_document(req.pk, sam.user, "identity", "again", STAFF_CONTEXT)
    with pytest.raises(flows.WrongState):
        flows.disable(req.pk, tess.user, "code not checked", STAFF_CONTEXT)
    assert state(req) == State.WAITING and twofactor.has_2fa(alice.user)

    flows.cancel(req.pk, STAFF_CONTEXT, staff=tess.user, reason="customer found the phone")
    for step in [
        lambda: flows.record_call(req.pk, sam.user, "confirmed", "", STAFF_CONTEXT),
        lambda: flows.send_code(req.pk, sam.user, STAFF_CONTEXT),
        lambda: flows.disable(req.pk, tess.user, "", STAFF_CONTEXT),
        lambda: flows.cancel(req.pk, STAFF_CONTEXT),
    ]:
        with pytest.raises(flows.WrongState):
            step()
    assert state(req) == State.CANCELLED and twofactor.has_2fa(alice.user)


def test_disabling_twice_is_refused(alice: Enrolled, sam: Enrolled, tess: Enrolled) -> None:
    req = open_for(alice, sam)
    flows.record_call(req.pk, sam.user, "confirmed", "", STAFF_CONTEXT)
    flows.disable(req.pk, tess.user, "first", STAFF_CONTEXT)
    with pytest.raises(flows.WrongState) as refused:
        flows.disable(req.pk, tess.user, "second", STAFF_CONTEXT)
    assert refused.value.state == State.COMPLETED
    assert req.events.filter(step=Step.DISABLED).count() == 1


def test_staff_never_act_on_their_own_account(sam: Enrolled, tess: Enrolled) -> None:
    with pytest.raises(flows.OwnAccount):
        open_for(sam, sam)
    req = open_for(sam, tess)  # another staff member may open it for them
    with pytest.raises(flows.OwnAccount):
        flows.record_call(req.pk, sam.user, "confirmed", "it is me", STAFF_CONTEXT)
    flows.record_call(req.pk, tess.user, "confirmed", "", STAFF_CONTEXT)
    with pytest.raises(flows.OwnAccount):
        flows.disable(req.pk, sam.user, "it is me", STAFF_CONTEXT)
    with pytest.raises(flows.OwnAccount):
        flows.cancel(req.pk, STAFF_CONTEXT, staff=sam.user)
    assert state(req) == State.APPROVED


def test_four_eyes_counts_every_checker(alice: Enrolled, sam: Enrolled, tess: Enrolled) -> None:
    uma = enrolled("uma@support.example", is_staff=True)
    req = waiting_request(alice, sam)  # sam recorded the call
    flows.verify_document(req.pk, tess.user, "identity", "passport", STAFF_CONTEXT)
    check = flows.send_code(req.pk, tess.user, STAFF_CONTEXT)
    flows.check_code(req.pk, tess.user, code_from_outbox(check), STAFF_CONTEXT)
    assert state(req) == State.APPROVED
    for checker in [sam, tess]:
        with pytest.raises(flows.FourEyes):
            flows.disable(req.pk, checker.user, "", STAFF_CONTEXT)
    flows.disable(req.pk, uma.user, "checked by two others", STAFF_CONTEXT)


def test_one_request_in_progress_per_account(alice: Enrolled, sam: Enrolled) -> None:
    req = open_for(alice)
    with pytest.raises(flows.AlreadyActive) as refused:
        open_for(alice, sam)
    assert refused.value.request_id == req.pk
    flows.cancel(req.pk, STAFF_CONTEXT)
    assert open_for(alice, sam).pk != req.pk


def test_an_account_without_2fa_gets_no_request(sam: Enrolled) -> None:
    from keyfob.accounts.models import User

    bob = User.objects.create_user("bob@example.com", "pw")
    with pytest.raises(flows.NotEnrolled):
        flows.open_request(bob, STAFF_CONTEXT, site=SITE, staff=sam.user)
    assert not Request.objects.exists()


# The cancel link -----------------------------------------------------------------------


def cancel_link(customer: Enrolled) -> str:
    row = Outbox.objects.filter(user=customer.user, kind=NoticeKind.SUPPORT_OPENED).first()
    assert row is not None
    match = re.search(r"http://testserver(/support/cancel/\S+/)", notices.render(row).text)
    assert match
    return match.group(1)


def test_the_emailed_link_cancels_with_a_post(alice: Enrolled, client: Client) -> None:
    req = open_for(alice)
    link = cancel_link(alice)
    page = client.get(link)
    assert page.status_code == 200 and b"Cancel the request" in page.content
    assert state(req) == State.OPEN  # a GET (a mail scanner) changes nothing
    done = client.post(link, follow=True)
    assert b"The request is cancelled." in done.content
    assert state(req) == State.CANCELLED
    event = req.events.get(step=Step.CANCELLED)
    assert event.actor is None
    again = client.post(link, follow=True)
    assert b"no longer in progress" in again.content


def test_a_forged_or_old_link_is_refused(alice: Enrolled, client: Client) -> None:
    req = open_for(alice)
    link = cancel_link(alice)
    # Another request's id under this link's signature (the id's digits may also occur in
    # the signature, so edit the signed payload itself, not the text of the link).
    value = link.rstrip("/").rsplit("/", 1)[1]
    payload, signature = value.split(":", 1)
    data = json.loads(signing.b64_decode(payload.encode()))
    data["r"] = req.pk + 1
    other = signing.b64_encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    forged = link.replace(value, f"{other}:{signature}")
    for bad in [forged, "/support/cancel/nonsense/", link[:-3] + "x/"]:
        response = client.post(bad)
        assert response.status_code == 400 and b"This link is not valid" in response.content
    with clock.frozen(T0 + 31 * 86400):
        assert client.post(link).status_code == 400
    assert state(req) == State.OPEN


# The transitions table ---------------------------------------------------------------------


@pytest.mark.parametrize("step", sorted(flows.TRANSITIONS))
def test_a_step_moves_only_from_the_states_the_table_allows(alice: Enrolled, step: str) -> None:
    allowed, targets = flows.TRANSITIONS[step]
    req = open_for(alice)
    for current in State.values:
        Request.objects.filter(pk=req.pk).update(state=current)
        req.refresh_from_db()
        if current in allowed:
            flows.move(req, step)
            assert state(req) == targets[0]
        else:
            with pytest.raises(flows.WrongState):
                flows.move(req, step)
            assert state(req) == current
    with pytest.raises(ValueError):
        flows.move(req, step, to="no such state")


# The four-eyes hand-off (issue 21) -------------------------------------------------------


def handoffs() -> dict[str, Outbox]:
    return {row.to: row for row in Outbox.objects.filter(kind=NoticeKind.SUPPORT_HANDOFF)}


def test_an_approval_is_mailed_to_the_staff_it_waits_for(
    alice: Enrolled, sam: Enrolled, tess: Enrolled, client: Client
) -> None:
    uma = enrolled("uma@support.example", is_staff=True)
    uma.user.last_language = "fr"
    uma.user.save(update_fields=["last_language"])
    make_user("gone@support.example", is_staff=True, is_active=False)
    req = open_for(alice, sam)
    flows.record_call(req.pk, sam.user, "no_answer", "voicemail", STAFF_CONTEXT)
    assert handoffs() == {}  # not approved yet
    flows.record_call(req.pk, tess.user, "confirmed", "Alice answered", STAFF_CONTEXT, site=SITE)
    # Not those who recorded a check, not the customer, not an inactive account.
    told = handoffs()
    assert set(told) == {"uma@support.example"}
    assert told["uma@support.example"].user == uma.user
    text = notices.render(told["uma@support.example"]).text
    assert f"demande au support {req.pk}" in text
    assert f"Ouvrir la demande : {SITE}/support/{req.pk}/" in text
    # The link opens the request, where uma may disable it.
    page = client_for(uma.user).get(f"/support/{req.pk}/").content.decode()
    assert "Disable two-factor authentication" in page


def test_an_approval_by_documents_and_code_is_handed_off_from_the_page(
    acme: Enrolled, sam: Enrolled, tess: Enrolled
) -> None:
    req = waiting_request(acme, sam, documents=True)
    check = flows.send_code(req.pk, sam.user, STAFF_CONTEXT)
    response = client_for(sam.user).post(
        f"/support/{req.pk}/code/check/", {"code-code": code_from_outbox(check)}
    )
    assert response.status_code == 302 and state(req) == State.APPROVED
    told = handoffs()
    assert set(told) == {"tess@support.example"}
    rendered = notices.render(told["tess@support.example"])
    assert f"support request {req.pk}" in rendered.text
    assert f"http://testserver/support/{req.pk}/" in rendered.text
    assert f'href="http://testserver/support/{req.pk}/"' in rendered.html
    assert "acme" not in rendered.text  # the customer's address stays on the desk


def test_without_four_eyes_nobody_is_handed_off(
    alice: Enrolled, sam: Enrolled, tess: Enrolled, settings: object
) -> None:
    settings.KEYFOB_SUPPORT_FOUR_EYES = False  # type: ignore[attr-defined]
    req = open_for(alice, sam)
    flows.record_call(req.pk, sam.user, "confirmed", "Alice answered", STAFF_CONTEXT, site=SITE)
    assert state(req) == State.APPROVED and handoffs() == {}
