"""In headless Chromium, the Content-Security-Policy of a served portal blocks nothing.

Chromium runs in a process of its own against `keyfob serve` (Playwright's sync API
allows one instance per thread, and tests/browser holds that one for the session).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from keyfob.site.middleware import CONTENT_SECURITY_POLICY
from tests.clients import CHROMIUM_ARGS
from tests.conftest import require_tool
from tests.site.conftest import PASSWORD, Server, base_env, enrol, keyfob, start_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCRIPT = r"""
import json, re, sys, time
from playwright.sync_api import sync_playwright
from keyfob import otp

base, chromium, args, password, secret = sys.argv[1:6]
refused, pages = [], {}
with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=chromium, args=json.loads(args), timeout=30000)
    page = browser.new_context(locale="en-GB").new_page()
    page.set_default_timeout(10000)
    page.on("console", lambda m: refused.append(m.text)
            if "Refused to" in m.text or "Content Security Policy" in m.text else None)
    # Installed before any page script or style: counts violations during loading too.
    page.add_init_script("window.__csp = []; document.addEventListener("
                         "'securitypolicyviolation', e => window.__csp.push(e.violatedDirective))")

    def record(name, response=None):
        page.wait_for_load_state("load")
        pages[name] = {
            "url": page.url,
            "csp": response.headers.get("content-security-policy") if response else None,
            "violations": page.evaluate("window.__csp"),
            "margin": page.evaluate("getComputedStyle(document.body).margin"),
            "qr": page.locator(".qr svg").count(),
        }

    def sign_in(email):
        record("login", page.goto(base + "/login/"))
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in", exact=True).click()

    sign_in("erin@example.com")
    page.wait_for_url(re.compile(r"/account/security/$"))
    page.goto(base + "/account/security/setup/")
    page.get_by_role("button", name="Create my key").click()  # the key, for the QR code below
    page.wait_for_selector(".qr svg")
    for path in ["/account/security/", "/account/security/setup/", "/account/"]:
        record(path, page.goto(base + path))
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/$"))

    sign_in("fay@example.com")
    page.wait_for_url(re.compile(r"/login/code/$"))
    record("code step", page.reload())
    code = otp.totp(otp.b32decode_secret(secret), time.time())
    page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/account/"))
    record("security with 2FA on", page.goto(base + "/account/security/"))
    browser.close()
print("RESULT=" + json.dumps({"refused": refused, "pages": pages}))
"""


def test_no_csp_violation_on_the_pages(tmp_path: Path, servers: list[Server]) -> None:
    chromium = require_tool("chromium")
    from keyfob import otp

    env = base_env(tmp_path)
    assert keyfob(env, "migrate", "--no-input").returncode == 0
    made = keyfob(
        env,
        "createuser",
        "erin@example.com",
        "--phone",
        "+33123456789",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert made.returncode == 0, made.stderr
    secret = enrol(env, "fay@example.com")
    server = start_server(env)
    servers.append(server)
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"http://127.0.0.1:{server.port}", chromium,
         json.dumps(CHROMIUM_ARGS), PASSWORD, otp.b32encode_secret(secret)],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.split("RESULT=", 1)[1])
    pages = result["pages"]
    assert set(pages) == {"login", "/account/security/", "/account/security/setup/",
                          "/account/", "code step", "security with 2FA on"}  # fmt: skip
    assert pages["/account/security/setup/"]["qr"] == 1  # the inline QR SVG is there
    for name, seen in pages.items():
        assert seen["csp"] == CONTENT_SECURITY_POLICY, name
        assert seen["violations"] == [], (name, seen)
        # The stylesheet applied (the browser's default body margin is 8px).
        assert seen["margin"] != "8px", name
    assert result["refused"] == []
