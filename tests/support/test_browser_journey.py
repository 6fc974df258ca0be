"""A customer without a phone number loses the authenticator, in headless Chromium: the
request page says which path applies and where it is at each step, each change of state
arrives by e-mail (real SMTP), and once support turned 2FA off the next sign-in invites the
customer to turn it on again, which first asks for a phone number and says why."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from keyfob.accounts.models import AccountKind, User
from keyfob.core import clock
from keyfob.support import flows
from keyfob.support.models import Request
from keyfob.twofactor import flows as twofactor
from tests.clients import decode_qr, oathtool_totp
from tests.smtp import SmtpServer
from tests.support.conftest import STAFF_CONTEXT, T0, Enrolled, enrolled
from tests.support.test_browser_desk import body, deliver, messages, settle, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def staff_sign_in_with_codes(settings: Any) -> None:
    """Staff here sign in with codes from oathtool: the rule that staff pages need a security
    key or passkey (KEYFOB_STAFF_PHISHING_RESISTANT) is off for these journeys. Its own
    tests: tests/support/test_staff_rule.py, tests/twofactor/test_browser_passkeys.py."""
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False


@pytest.fixture
def nora(transactional_db: None) -> Enrolled:
    return enrolled("nora@asso.example", kind=AccountKind.NONPROFIT)


def status(page: Any) -> str:
    page.reload()
    return " ".join(page.locator("main").inner_text().split())


def test_a_customer_follows_the_request_then_turns_2fa_on_again(
    page: Any, live_server: Any, smtp: SmtpServer, nora: Enrolled, tmp_path: Path
) -> None:
    base = live_server.url
    sam = enrolled("sam@support.example", is_staff=True).user
    tess = enrolled("tess@support.example", is_staff=True).user
    settle(smtp)
    with clock.frozen(T0):
        sign_in(page, base, "nora@asso.example")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.get_by_text("Lost access to your authenticator?").click()
        page.get_by_role("link", name="Ask support to turn off two-factor authentication").click()
        text = status(page)
        assert "Your profile has no phone number, so support cannot call you." in text
        assert "Send these documents from nora@asso.example to support@example.com:" in text
        assert "Proof of identity of the current president" in text
    # Ten minutes to write: past the code step's five, the message still goes.
    with clock.frozen(T0 + 600):
        page.get_by_label("Anything support should know (optional)").fill("Lost it abroad. " * 40)
        page.get_by_role("button", name="Ask support to turn off two-factor authentication").click()
        assert "Your request is sent to support." in messages(page)
        assert "Your profile has no phone number, so we cannot call you." in status(page)
        assert "Someone who knew your password" in body(deliver(smtp, 1)[0])
        req = Request.objects.get(user=nora.user)
        assert req.note.startswith("Lost it abroad.")

        flows.record_call(req.pk, sam, "no_answer", "no number", STAFF_CONTEXT)
        text = status(page)
        assert "We check who you are with identity documents and a code we e-mailed you." in text
        assert "We will also e-mail a code to nora@asso.example" in text
        waiting = deliver(smtp, 2)[1]
        assert waiting["Subject"] == "Keyfob: News of your request to support"
        assert "- Proof of identity of the current president" in body(waiting)

        check = flows.send_code(req.pk, sam, STAFF_CONTEXT)
        assert "Read us the code we e-mailed to nora@asso.example" in status(page)
        mailed = deliver(smtp, 3)[2]
        code = re.search(r"^\s+(\d{4}) (\d{4})$", body(mailed), re.MULTILINE)
        assert code and check.sent_to == "nora@asso.example"
        for kind in req.required_documents():
            flows.verify_document(req.pk, sam, kind, "seen", STAFF_CONTEXT)
        flows.check_code(req.pk, sam, code.group(1) + code.group(2), STAFF_CONTEXT, site=base)
        assert "We have checked that the request comes from you." in status(page)
        # The customer hears of it; the four-eyes hand-off reaches tess, who may disable.
        sent = {m["To"]: m for m in deliver(smtp, 5)[3:5]}
        assert "has checked that your request" in body(sent["nora@asso.example"])
        handoff = sent["tess@support.example"]
        assert handoff["Subject"] == "Keyfob: A support request waits for you"
        assert f"Open the request: {base}/support/{req.pk}/" in body(handoff)

        flows.disable(req.pk, tess, "documents and code", STAFF_CONTEXT)
        assert "turned off" in deliver(smtp, 6)[5]["Subject"]

    with clock.frozen(T0 + 900):
        # The password alone opens the account now; the banner invites to turn 2FA on again.
        sign_in(page, base, "nora@asso.example")
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert "Support turned off two-factor authentication for you" in messages(page)
        page.get_by_role("link", name="Turn it on again with your new phone").click()
        page.wait_for_url(re.compile(r"/account/security/setup/phone/$"))
        assert "support calls this number" in page.locator("main").inner_text()
        page.get_by_label("Phone number").fill("+33 6 12 34 56 42")
        page.get_by_role("button", name="Save and continue").click()
        page.wait_for_url(re.compile(r"/account/security/setup/$"))
        page.get_by_role("button", name="Create my key").click()
        png = tmp_path / "qr.png"
        page.locator(".qr svg").screenshot(path=str(png))
        secret = parse_qs(urlsplit(decode_qr(png)).query)["secret"][0]
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0 + 900))
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
    assert twofactor.has_2fa(nora.user)
    assert User.objects.get(pk=nora.user.pk).phone == "+33612345642"
