"""Recovery codes, counter-based codes, trusted browsers and the activity list, in Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from keyfob.accounts.models import User
from keyfob.core import clock
from tests.clients import decode_qr, oathtool_totp
from tests.conftest import require_tool
from tests.twofactor.test_browser_flows import PASSWORD, T0, enter_code, sign_in, sign_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def enable(page: Any, base: str, tmp_path: Path, kind: str = "totp") -> str:
    """Turn 2FA on from the Security page; return the base32 secret read from the QR code."""
    page.goto(f"{base}/account/security/")
    page.get_by_role("link", name="Enable two-factor authentication").click()
    if kind == "hotp":  # behind "Advanced": time-based codes need no choice
        page.get_by_text("Advanced: the type of codes").click()
        page.get_by_label("Counter-based").check()
    page.get_by_role("button", name="Create my key").click()
    png = tmp_path / f"qr-{kind}.png"
    page.locator(".qr svg").screenshot(path=str(png))
    uri = decode_qr(png)
    assert urlsplit(uri).netloc == kind
    return parse_qs(urlsplit(uri).query)["secret"][0]


def oathtool_hotp(secret: str, counter: int) -> str:
    oathtool = require_tool("oathtool")
    out = subprocess.run(
        [oathtool, "--hotp", "-b", "-c", str(counter), secret],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_recovery_code_sign_in(page: Any, live_server: Any, tmp_path: Path) -> None:
    User.objects.create_user("erin@example.com", PASSWORD, phone="+33123456789")
    base = live_server.url
    with clock.frozen(T0):
        sign_in(page, base, "erin@example.com")
        secret = enable(page, base, tmp_path)
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0))
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
        with page.expect_download() as download:
            page.get_by_role("link", name="Download").click()
        text = Path(download.value.path()).read_text()
        codes = re.findall(r"^[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}$", text, re.MULTILINE)
        assert len(codes) == 10
        page.get_by_role("button", name="Print").wait_for()  # our script, allowed by CSP
        page.get_by_role("button", name="Continue").click()
        page.locator("p.error", has_text="Tick the box once you have saved the codes.").wait_for()
        page.get_by_label("I have saved these recovery codes somewhere safe").check()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert "You have 10 unused recovery codes." in page.locator("#recovery-left").inner_text()
        sign_out(page)

        sign_in(page, base, "erin@example.com")
        page.get_by_role("link", name="Use a recovery code").click()
        page.get_by_label("Recovery code").fill(codes[0].lower())
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert "You have 9 recovery codes left." in page.locator(".messages").inner_text()
        assert "You have 9 unused recovery codes." in page.locator("#recovery-left").inner_text()
        sign_out(page)

        sign_in(page, base, "erin@example.com")
        page.get_by_role("link", name="Use a recovery code").click()
        page.get_by_label("Recovery code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        page.locator("p.error", has_text="This recovery code has already been used").wait_for()


def test_counter_based_codes(page: Any, live_server: Any, tmp_path: Path) -> None:
    User.objects.create_user("finn@example.com", PASSWORD, phone="+33123456789")
    base = live_server.url
    sign_in(page, base, "finn@example.com")
    secret = enable(page, base, tmp_path, kind="hotp")
    page.get_by_label("Authentication code").fill(oathtool_hotp(secret, 0))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url(re.compile(r"/recovery-codes/$"))
    page.get_by_label("I have saved these recovery codes somewhere safe").check()
    page.get_by_role("button", name="Continue").click()
    assert "Counter-based codes." in page.locator(".status").inner_text()
    sign_out(page)
    # The app was pressed three times in a pocket: the look-ahead still finds the code.
    sign_in(page, base, "finn@example.com")
    enter_code(page, oathtool_hotp(secret, 4))
    page.wait_for_url(re.compile(r"/account/security/$"))
    sign_out(page)
    sign_in(page, base, "finn@example.com")
    enter_code(page, oathtool_hotp(secret, 4))
    page.locator("p.error", has_text="This code is not right").wait_for()
    enter_code(page, oathtool_hotp(secret, 5))
    page.wait_for_url(re.compile(r"/account/security/$"))


def test_trusted_browser_and_activity(page: Any, live_server: Any, tmp_path: Path) -> None:
    User.objects.create_user("gail@example.com", PASSWORD, phone="+33123456789")
    base = live_server.url
    with clock.frozen(T0):
        sign_in(page, base, "gail@example.com")
        secret = enable(page, base, tmp_path)
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0))
        page.get_by_role("button", name="Activate").click()
        page.get_by_label("I have saved these recovery codes somewhere safe").check()
        page.get_by_role("button", name="Continue").click()
        sign_out(page)
    with clock.frozen(T0 + 30):
        sign_in(page, base, "gail@example.com")
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0 + 30))
        page.get_by_label("Trust this browser for 30 days").check()
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert page.locator("#browsers tbody tr").count() == 1
        sign_out(page)
        # Password only, no code step.
        sign_in(page, base, "gail@example.com")
        page.wait_for_url(re.compile(r"/account/security/$"))
        activity = page.locator("#activity").inner_text()
        for text in ["Signed in from a trusted browser", "Browser trusted",
                     "Two-factor authentication turned on", "Chrome"]:  # fmt: skip
            assert text in activity
    with clock.frozen(T0 + 60):
        # Revoking is a sensitive change: asked to confirm first (the last code was skipped).
        page.get_by_role("button", name="Revoke all").click()
        page.wait_for_url(re.compile(r"/account/confirm/"))
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Authentication code").fill(oathtool_totp(secret, T0 + 60))
        page.get_by_role("button", name="Confirm").click()
        # The press made before the confirmation is applied after it (issue 24).
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert "1 browser is no longer trusted." in page.locator(".messages").inner_text()
        assert page.locator("#browsers tbody tr").count() == 0
        sign_out(page)
        sign_in(page, base, "gail@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
