"""The portal's page flows, in headless Chromium, with oathtool and zbarimg as the user's app."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from keyfob.accounts.models import User
from keyfob.core import clock
from tests.clients import decode_qr, oathtool_totp

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
T0 = 1_900_000_005.0  # middle of a 30-second step


def sign_in(page: Any, base: str, email: str = "carol@example.com") -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/$"))


def enter_code(page: Any, code: str) -> None:
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Verify").click()


def test_enable_sign_in_with_codes_and_disable(page: Any, live_server: Any, tmp_path: Path) -> None:
    User.objects.create_user(
        "carol@example.com", PASSWORD, display_name="Carol", phone="+33123456789"
    )
    base = live_server.url
    with clock.frozen(T0):
        sign_in(page, base)
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert page.locator(".status").inner_text() == "Two-factor authentication is off."
        page.get_by_role("link", name="Enable two-factor authentication").click()
        page.get_by_role("button", name="Create my key").click()

        # The app's view of it: scan the QR image, then compute codes independently.
        qr_png = tmp_path / "qr.png"
        page.locator(".qr svg").screenshot(path=str(qr_png))
        uri = decode_qr(qr_png)
        assert uri == page.locator("#otpauth-link").get_attribute("href")
        parts = urlsplit(uri)
        assert parts.scheme == "otpauth" and parts.netloc == "totp"
        secret = parse_qs(parts.query)["secret"][0]
        enter_code_label = page.get_by_label("Authentication code")
        enter_code_label.fill(oathtool_totp(secret, T0))
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
        page.get_by_label("I have saved these recovery codes somewhere safe").check()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert page.locator(".status strong").inner_text() == "Two-factor authentication is on."
        assert secret not in page.content()
        sign_out(page)

    with clock.frozen(T0 + 30):
        code = oathtool_totp(secret, T0 + 30)
        sign_in(page, base)
        page.wait_for_url(re.compile(r"/login/code/$"))
        enter_code(page, code)
        page.wait_for_url(re.compile(r"/account/security/$"))
        sign_out(page)

        # The same code a second time: refused.
        sign_in(page, base)
        enter_code(page, code)
        page.locator("p.error", has_text="This code has already been used").wait_for()
        assert page.url.endswith("/login/code/")

    with clock.frozen(T0 + 60):
        wrong = "000000" if oathtool_totp(secret, T0 + 60) != "000000" else "111111"
        enter_code(page, wrong)
        page.locator("p.error", has_text="This code is not right").wait_for()
        enter_code(page, oathtool_totp(secret, T0 + 60))
        page.wait_for_url(re.compile(r"/account/security/$"))

    with clock.frozen(T0 + 90):
        # Signed in with a code 30 s ago: that is the proof, no second code is asked.
        page.get_by_role("link", name="Disable two-factor authentication").click()
        assert page.get_by_label("Authentication code").count() == 0
        page.get_by_role("button", name="Disable").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert page.locator(".status").inner_text() == "Two-factor authentication is off."


@pytest.mark.parametrize(
    "path", ["/account/security/", "/account/security/setup/", "/account/", "/account/password/"]
)
def test_pages_fit_a_phone(browser: Any, live_server: Any, path: str, tmp_path: Path) -> None:
    User.objects.create_user("dan@example.com", PASSWORD, phone="+33123456789")
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        with clock.frozen(T0):
            sign_in(page, live_server.url, "dan@example.com")
            page.goto(live_server.url + path)
            if path.endswith("/setup/"):  # the page with the QR code, once the key is made
                page.get_by_role("button", name="Create my key").click()
                page.wait_for_selector(".qr svg")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
            button = page.locator("main button, main a.button").first
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360
            page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    finally:
        context.close()


def test_french_pages_and_the_footer_switch(page: Any, live_server: Any) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Language").select_option("fr")
    page.get_by_role("button", name="Change").click()
    page.get_by_role("button", name="Se connecter", exact=True).wait_for()
    assert page.locator("html").get_attribute("lang") == "fr"


def test_login_page_fits_a_phone(browser: Any, live_server: Any) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
        box = page.get_by_role("button", name="Sign in", exact=True).bounding_box()
        assert box is not None and box["width"] > 250  # full width on a phone
    finally:
        context.close()
