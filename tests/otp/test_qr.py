"""QR rendering read back by a real scanner (zbarimg), and inline SVG that is safe to embed."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from keyfob import qr
from keyfob.otp import KeyURI
from tests.conftest import require_tool

SECRET = b"12345678901234567890abcdefghijkl"
SVG_NS = "http://www.w3.org/2000/svg"

KEYS = [
    KeyURI("totp", SECRET, "alice@example.com", "ACME Hosting"),
    KeyURI("totp", SECRET, "élodie:ops", "Hébergement & Cie", algorithm="SHA256", digits=8),
    KeyURI("totp", SECRET, "用户@例子.中国", "日本ホスティング", period=60),
    KeyURI("hotp", SECRET, "bob", "ACME", algorithm="SHA512", counter=12345),
]


def _zbarimg(path: Path) -> str:
    # --raw prints only the payload; -Sbinary hands the bytes over as they are, without
    # zbar guessing a character set (a key URI is ASCII anyway, percent-encoded) and, in
    # zbar 0.23, without the newline text output ends with (other versions may add it; a
    # key URI never ends in one). D-Bus noise zbarimg may print on stderr is ignored.
    out = subprocess.run(
        [require_tool("zbarimg"), "--quiet", "--raw", "-Sbinary", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return out.removesuffix(b"\n").decode("ascii")


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k.kind}-{k.issuer}")
def test_png_reads_back_exactly(key: KeyURI, tmp_path: Path) -> None:
    uri = key.to_uri()
    path = tmp_path / "key.png"
    path.write_bytes(qr.png(uri))
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    scanned = _zbarimg(path)
    assert scanned == uri
    assert KeyURI.parse(scanned) == key


def test_png_scale() -> None:
    uri = KEYS[0].to_uri()
    assert len(qr.png(uri, scale=2)) < len(qr.png(uri, scale=8))
    with pytest.raises(ValueError):
        qr.png(uri, scale=0)


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{k.kind}-{k.issuer}")
def test_svg_is_inline_safe_xml(key: KeyURI) -> None:
    markup = qr.svg(key.to_uri(), title="Scan <this> & that")
    assert markup.startswith("<svg ")
    assert "<?xml" not in markup
    root = ET.fromstring(markup)  # noqa: S314 - our own markup, not untrusted input
    assert root.tag == f"{{{SVG_NS}}}svg"
    assert root.get("role") == "img"
    title = root.find(f"{{{SVG_NS}}}title")
    assert title is not None and title.text == "Scan <this> & that"
    # The only URL in it is the SVG namespace: no external images, fonts or links.
    assert re.findall(r"https?://[^\s\"'<>]*", markup) == [SVG_NS]
    assert "href" not in markup
    assert "<script" not in markup.lower()
    width, height = int(root.get("width", "0")), int(root.get("height", "0"))
    assert width == height
    assert 150 <= width <= 250


def test_svg_without_title() -> None:
    root = ET.fromstring(qr.svg(KEYS[0].to_uri()))  # noqa: S314 - our own markup
    assert root.find(f"{{{SVG_NS}}}title") is None


def test_svg_reads_back(tmp_path: Path) -> None:
    """The SVG, rasterised by Chromium, scans back to the same URI."""
    chromium = require_tool("chromium")
    uri = KEYS[1].to_uri()
    page = tmp_path / "qr.html"
    page.write_text(
        f"<!doctype html><body style='margin:0'>{qr.svg(uri, title='QR')}</body>",
        encoding="utf-8",
    )
    shot = tmp_path / "qr.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=300,300",
            page.as_uri(),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert _zbarimg(shot) == uri


def test_terminal() -> None:
    text = qr.terminal(KEYS[0].to_uri())
    lines = text.splitlines()
    assert len(lines) > 10
    assert len({len(line) for line in lines}) == 1  # a rectangle
    # Compact output packs two module rows per line: fewer lines than columns.
    assert len(lines) < len(lines[0])


@pytest.mark.parametrize("bad", ["", "x" * 5000])
def test_refuses_what_cannot_be_a_qr_code(bad: str) -> None:
    for render in (qr.svg, qr.png, qr.terminal):
        with pytest.raises(ValueError):
            render(bad)
