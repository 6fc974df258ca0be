"""A second address for security notices in headless Chromium (issue 24): added from the
Security page with a code that arrives there through a real SMTP server (aiosmtpd), told to
both addresses, then a security notice reaches both; axe finds nothing serious."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyfob.core import clock
from tests.clients import oathtool_totp
from tests.site.test_browser_a11y import serious_violations
from tests.smtp import SmtpServer
from tests.support.conftest import T0, Enrolled, enrolled
from tests.support.test_browser_desk import body, deliver, messages, settle, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECOND = "alice@backup.example"


@pytest.fixture
def alice(transactional_db: None) -> Enrolled:
    return enrolled("alice@example.com")


def test_a_second_address_is_confirmed_then_gets_every_notice(
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
        page.get_by_role("link", name="Add a second address for security notices").click()
        page.wait_for_url(re.compile(r"/account/notice-address/$"))
        assert serious_violations(page) == []
        page.get_by_label("Second address for security notices").fill("ALICE@example.com")
        page.get_by_role("button", name="Send a code to this address").click()
        assert "This is your sign-in address" in page.locator("main").inner_text()
        page.get_by_label("Second address for security notices").fill(SECOND)
        page.get_by_role("button", name="Send a code to this address").click()
        page.wait_for_url(re.compile(r"/account/notice-address/confirm/$"))
        assert serious_violations(page) == []
        [mail] = deliver(smtp, 1)
        assert mail["To"] == SECOND
        assert mail["Subject"] == "Keyfob: Confirm your address for security notices"
        assert "From the address" not in body(mail)  # it may be a stranger's (a typo)
        found = re.search(r"^\s+(\d{4} \d{4})$", body(mail), re.MULTILINE)
        assert found, body(mail)
        page.get_by_label("Code from the e-mail").fill(found.group(1))
        page.get_by_role("button", name="Confirm the address").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert f"{SECOND} now receives your security notices too." in messages(page)
        assert SECOND in page.locator("#notice-email").inner_text()
        assert serious_violations(page) == []
        told = deliver(smtp, 3)[1:]
        assert {m["To"] for m in told} == {"alice@example.com", SECOND}
        assert {m["Subject"] for m in told} == {"Keyfob: Address for security notices changed"}

        # A security change (recovery codes regenerated) reaches both addresses.
        page.get_by_role("link", name="Regenerate recovery codes").click()
        page.get_by_role("button", name="Make new codes").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
        both = deliver(smtp, 5)[3:]
        assert {m["To"] for m in both} == {"alice@example.com", SECOND}
        assert {m["Subject"] for m in both} == {"Keyfob: Recovery codes regenerated"}
