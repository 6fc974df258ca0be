"""Issue 17, stage 1 in headless Chromium: a second authenticator app added from the Security
page (oathtool as the new phone), used to sign in, renamed and removed; axe-core on the
new pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from keyfob.core import clock
from keyfob.twofactor.models import Authenticator
from tests.clients import decode_qr, oathtool_totp
from tests.conftest import enrol, make_user
from tests.site.test_browser_a11y import code_step, serious_violations, sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
T0 = 1_900_000_005.0  # middle of a 30-second step


def test_add_a_second_app_sign_in_with_it_rename_and_remove(
    page: Any, live_server: Any, tmp_path: Path
) -> None:
    base = live_server.url
    with clock.frozen(T0 - 300):
        carol = enrol(make_user("carol@example.com", display_name="Carol"))
    with clock.frozen(T0):
        sign_in(page, base, "carol@example.com")
        code_step(page, carol)
        page.get_by_role("link", name="Add an authenticator app").click()
        page.wait_for_url(re.compile(r"/account/security/setup/$"))
        assert serious_violations(page) == []
        page.get_by_label("Name of this authenticator app").fill("New phone")
        page.get_by_role("button", name="Create my key").click()
        qr_png = tmp_path / "qr.png"
        page.locator(".qr svg").screenshot(path=str(qr_png))
        secret = parse_qs(urlsplit(decode_qr(qr_png)).query)["secret"][0]
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0))
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile(r"/account/security/$"))  # no new recovery codes
        rows = page.locator("#authenticators-table tbody tr")
        assert rows.count() == 2
        assert "New phone" in rows.nth(1).inner_text()
        sign_out(page)

    with clock.frozen(T0 + 30):
        # The new phone's code signs in; the activity says it was that app.
        sign_in(page, base, "carol@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0 + 30))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert "with “New phone”" in page.locator("#activity-table").inner_text()

        page.get_by_role("link", name="Rename New phone").click()
        assert serious_violations(page) == []
        page.get_by_label("Name of this authenticator app").fill("")
        page.get_by_role("button", name="Rename").click()
        assert "Enter a name." in page.locator("main").inner_text()
        page.get_by_label("Name of this authenticator app").fill("Pixel")
        page.get_by_role("button", name="Rename").click()
        page.wait_for_url(re.compile(r"/account/security/$"))

        page.get_by_role("link", name="Remove Authenticator app").click()
        assert serious_violations(page) == []
        page.get_by_role("button", name="Remove").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert [a.name for a in Authenticator.objects.filter(user=carol.user)] == ["Pixel"]
        # The one left has no "Remove": removing it is disabling 2FA.
        assert page.get_by_role("link", name="Remove Pixel").count() == 0
        assert page.get_by_role("link", name="Disable two-factor authentication").count() == 1
