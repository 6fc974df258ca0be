"""QR codes for otpauth:// key URIs: SVG for the portal, PNG for files, text for terminals.

Presentation only (uses segno); `keyfob.otp` never imports it, so SSH servers without
segno can still verify codes. Error correction level M throughout: authenticator apps scan
it reliably from a screen, and it keeps the symbol small for a long URI.

A KeyURI's URI is plain ASCII (non-ASCII names are percent-encoded), so the QR code is
byte mode without an ECI header and every scanner reads it back unchanged.
"""

from __future__ import annotations

import io

import segno

__all__ = ["png", "svg", "terminal"]

_ERROR = "m"
_BORDER = 4  # the quiet zone the QR specification requires around the symbol
_SVG_MAX_PX = 250


def _make(uri: str) -> segno.QRCode:
    if not isinstance(uri, str) or not uri:
        raise ValueError("a QR code needs a non-empty URI")
    # boost_error=False: level M exactly, as documented, not whatever fits the version.
    return segno.make(uri, error=_ERROR, micro=False, boost_error=False)


def svg(uri: str, *, title: str | None = None) -> str:
    """Return inline SVG markup (no XML declaration, no external reference) for `uri`.

    The symbol is drawn at a whole number of pixels per module, at most 250 px wide with
    its quiet zone (about 200-250 px for a usual key URI). `title` becomes the SVG <title>,
    which screen readers announce (role="img"). Raises ValueError if `uri` is empty or
    too long for a QR code.
    """
    qr = _make(uri)
    modules = qr.symbol_size(scale=1, border=_BORDER)[0]
    # The largest whole scale that fits: crisp module edges, no blurry fractional pixels.
    scale = max(1, _SVG_MAX_PX // modules)
    out = io.BytesIO()
    qr.save(
        out,
        kind="svg",
        scale=scale,
        border=_BORDER,
        xmldecl=False,
        svgns=True,
        title=title,
        svgclass="keyfob-qr",
        lineclass=None,
        nl=False,
        dark="#000",
        light="#fff",  # an opaque background: a dark theme must not eat the quiet zone
    )
    markup = out.getvalue().decode("utf-8")
    # segno has no option for extra attributes; role="img" makes the <title> the name.
    return markup.replace("<svg ", '<svg role="img" ', 1)


def png(uri: str, *, scale: int = 8) -> bytes:
    """Return a PNG image of the QR code for `uri`, `scale` pixels per module.

    Raises ValueError if `uri` is empty or too long, or `scale` is below 1.
    """
    if type(scale) is not int or scale < 1:
        raise ValueError(f"scale must be a positive int, not {scale!r}")
    out = io.BytesIO()
    _make(uri).save(out, kind="png", scale=scale, border=_BORDER, dark="#000", light="#fff")
    return out.getvalue()


def terminal(uri: str) -> str:
    """Return the QR code for `uri` as text to print in a terminal.

    Uses half-block characters (two modules per character cell) when the installed segno
    supports `compact`, so a key URI fits in a 80x24 terminal; full blocks otherwise.
    """
    qr = _make(uri)
    out = io.StringIO()
    try:
        qr.terminal(out=out, border=_BORDER, compact=True)
    except TypeError:  # segno older than 1.5 has no compact output
        out = io.StringIO()
        qr.terminal(out=out, border=_BORDER)
    return out.getvalue()
