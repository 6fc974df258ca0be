"""Independent clients of what Keyfob makes: oathtool for codes, zbarimg for QR images,
Debian's Chromium for pages."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.conftest import require_tool

# Headless and quiet: no background traffic to hosts this machine cannot reach.
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


def oathtool_totp(b32_secret: str, at: float | None = None) -> str:
    """The TOTP code of base32 ``b32_secret`` at ``at`` (default now), computed by oathtool."""
    when = int(time.time() if at is None else at)
    return subprocess.run(
        [require_tool("oathtool"), "--totp", "-b", f"--now=@{when}", b32_secret],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()


def decode_qr(png: Path) -> str:
    """What an independent reader (zbarimg) finds in a QR image."""
    out = subprocess.run(
        [require_tool("zbarimg"), "--quiet", "--raw", str(png)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
