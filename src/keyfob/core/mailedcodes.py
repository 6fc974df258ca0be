"""One-time codes e-mailed to a person and typed or read back (support's identity check,
a new address's confirmation). Only a keyed digest of a code is stored."""

from __future__ import annotations

import secrets
import string

from django.utils.crypto import salted_hmac


def new_code(digits: int) -> tuple[str, str]:
    """A random code of ``digits`` decimal digits to e-mail, and a new salt for its digest."""
    return "".join(secrets.choice(string.digits) for _ in range(digits)), secrets.token_hex(16)


def digest(purpose: str, salt: str, code: str) -> str:
    """What is kept to check a mailed code. Keyed by SECRET_KEY: 8 digits are few enough
    that an unkeyed hash would be reversed. ``purpose`` keeps two uses' digests apart."""
    return salted_hmac(f"{purpose}:{salt}", code, algorithm="sha256").hexdigest()


def spaced(code: str) -> str:
    """A mailed code in groups of four, for reading (aloud); '' stays ''."""
    return f"{code[:4]} {code[4:]}" if code else ""
