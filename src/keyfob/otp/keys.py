"""Shared secrets: generation, base32 text form, and grouping for typing by hand."""

from __future__ import annotations

import base64
import binascii
import secrets

from keyfob.otp.errors import InvalidSecret, ParameterError

__all__ = [
    "MIN_SECRET_BYTES",
    "b32decode_secret",
    "b32encode_secret",
    "format_secret_groups",
    "random_secret",
]

# RFC 4226 section 4, requirement R6: the shared secret is at least 128 bits
# (160 recommended, which is also the SHA1 block-friendly default authenticators expect).
MIN_SECRET_BYTES = 16
# A generous ceiling so that junk text is refused before any decoding work.
_MAX_SECRET_TEXT = 1024

_B32_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def random_secret(nbytes: int = 20) -> bytes:
    """Return `nbytes` random bytes from `secrets` (the OS CSPRNG).

    Raises ParameterError if `nbytes` is below 16 (RFC 4226 R6) or above 128.
    """
    if type(nbytes) is not int or not MIN_SECRET_BYTES <= nbytes <= 128:
        raise ParameterError(f"a secret needs {MIN_SECRET_BYTES} to 128 bytes, not {nbytes!r}")
    return secrets.token_bytes(nbytes)


def b32encode_secret(secret: bytes) -> str:
    """Return `secret` as upper-case base32 without '=' padding (the otpauth:// form)."""
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise ParameterError("a secret is a non-empty bytes value")
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def _clean_b32(text: str) -> str:
    """Return `text` upper-cased without spaces, hyphens or padding; raise InvalidSecret."""
    if not isinstance(text, str):
        raise InvalidSecret("a base32 secret is text")
    if len(text) > _MAX_SECRET_TEXT:
        raise InvalidSecret("a base32 secret is at most 1024 characters")
    # Check ASCII before upper(): "ß".upper() is "SS", which would smuggle letters in.
    if not text.isascii():
        raise InvalidSecret("a base32 secret uses only the letters A-Z and digits 2-7")
    cleaned = text.replace(" ", "").replace("-", "").upper().rstrip("=")
    if not cleaned:
        raise InvalidSecret("the secret is empty")
    if not _B32_ALPHABET.issuperset(cleaned):
        bad = sorted(set(cleaned) - _B32_ALPHABET)
        raise InvalidSecret(
            f"a base32 secret uses only the letters A-Z and digits 2-7, not {''.join(bad)!r}"
        )
    return cleaned


def b32decode_secret(text: str) -> bytes:
    """Return the bytes encoded by base32 `text`.

    Lower case, spaces, hyphens and missing (or present) '=' padding are forgiven, so a
    secret typed from `format_secret_groups` output decodes. Raises InvalidSecret for
    anything else: other characters, an impossible length, empty or over-long text.
    The length policy (at least 16 bytes) is checked where the secret is used.
    """
    cleaned = _clean_b32(text)
    # Base32 packs 5 bytes into 8 characters; a final group of 1, 3 or 6 characters
    # cannot come from any byte string.
    if len(cleaned) % 8 in (1, 3, 6):
        raise InvalidSecret(f"{len(cleaned)} base32 characters cannot encode whole bytes")
    padded = cleaned + "=" * (-len(cleaned) % 8)
    try:
        return base64.b32decode(padded)
    except binascii.Error as exc:  # pragma: no cover - excluded by the checks above
        raise InvalidSecret(f"not base32: {exc}") from None


def format_secret_groups(b32: str) -> str:
    """Return base32 text in upper-case groups of four ("ABCD EFGH IJKL …") to type by hand.

    Raises InvalidSecret if `b32` is not base32 text (see `b32decode_secret`).
    """
    cleaned = _clean_b32(b32)
    return " ".join(cleaned[i : i + 4] for i in range(0, len(cleaned), 4))
