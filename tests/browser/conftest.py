"""Real headless Chromium (Debian's package) driven by Playwright, against a live server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_tool
from tests.notices.conftest import SmtpServer, free_port

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# there (creating accounts) are plain synchronous calls, so Django's guard does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=30_000)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1200, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that KEYFOB_SMTP_URL points at."""
    server = SmtpServer(free_port())
    server.start()
    settings.KEYFOB_SMTP_URL = server.url()
    yield server
    server.stop()


def decode_qr(png: Path) -> str:
    """What an independent reader (zbarimg) finds in a QR image."""
    zbarimg = require_tool("zbarimg")
    out = subprocess.run(
        [zbarimg, "--quiet", "--raw", str(png)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def oathtool_totp(b32_secret: str, at: float) -> str:
    """A TOTP code computed by an independent implementation (oathtool)."""
    oathtool = require_tool("oathtool")
    out = subprocess.run(
        [oathtool, "--totp", "-b", f"--now=@{int(at)}", b32_secret],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()
