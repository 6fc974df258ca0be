"""Changing the sign-in address in headless Chromium: the code arrives at the new address
through a real SMTP server (aiosmtpd) and is typed back; then both addresses are told."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyfob.accounts.models import User
from keyfob.core import clock
from tests.clients import oathtool_totp
from tests.smtp import SmtpServer
from tests.support.conftest import T0, Enrolled, enrolled
from tests.support.test_browser_desk import body, deliver, messages, settle, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(transactional_db: None) -> Enrolled:
    return enrolled("alice@example.com")


def test_a_new_address_is_confirmed_with_the_code_sent_to_it(
    page: Any, live_server: Any, smtp: SmtpServer, alice: Enrolled
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        sign_in(page, base, "alice@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.get_by_label("Authentication code").fill(oathtool_totp(alice.b32, T0))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/account/security/$"))

        page.goto(f"{base}/account/email/")
        page.get_by_label("New e-mail address").fill("alice@new.example")
        page.get_by_role("button", name="Change e-mail address").click()
        page.wait_for_url(re.compile(r"/account/email/confirm/$"))
        assert "We sent a code to alice@new.example." in page.locator("main").inner_text()

        [mail] = deliver(smtp, 1)
        assert mail["To"] == "alice@new.example"
        assert mail["Subject"] == "Keyfob: Confirm your new e-mail address"
        found = re.search(r"^\s+(\d{4} \d{4})$", body(mail), re.MULTILINE)
        assert found, body(mail)
        assert "Network address" not in body(mail)  # nothing about the account holder

        wrong = "1111 1111" if found.group(1) != "1111 1111" else "2222 2222"
        page.get_by_label("Code from the e-mail").fill(wrong)
        page.get_by_role("button", name="Confirm the new address").click()
        assert "That is not the code we sent. 4 tries left." in page.locator("main").inner_text()
        page.get_by_label("Code from the e-mail").fill(found.group(1))
        page.get_by_role("button", name="Confirm the new address").click()
        page.wait_for_url(re.compile(r"/account/$"))
        assert "Your e-mail address is changed." in messages(page)

        told = deliver(smtp, 3)[1:]
        assert {m["To"] for m in told} == {"alice@example.com", "alice@new.example"}
        assert {m["Subject"] for m in told} == {"Keyfob: E-mail address changed"}
    alice.user.refresh_from_db()
    assert alice.user.email == "alice@new.example"
    assert User.objects.filter(email="alice@example.com").count() == 0
