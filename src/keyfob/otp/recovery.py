"""Recovery codes: what a customer keeps on paper for when the phone is gone.

A code is 16 symbols from a 31-symbol alphabet with no look-alikes (no 0/O, 1/I/L):
16 x log2(31) = 79 random bits. It is shown, and hashed, in upper case as four groups of
four joined by hyphens: "7KQM-XW3D-RT9N-HB2F". When typed back, case, spaces and hyphens
are forgiven.
"""

from __future__ import annotations

import secrets

from keyfob.otp.errors import InvalidCode

__all__ = ["RECOVERY_ALPHABET", "new_recovery_code", "normalize_recovery_code"]

RECOVERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_SYMBOLS = frozenset(RECOVERY_ALPHABET)
_LENGTH = 16
# Generous room for separators and stray spaces; longer input is refused unread.
_MAX_INPUT = 64


def _grouped(compact: str) -> str:
    return "-".join(compact[i : i + 4] for i in range(0, _LENGTH, 4))


def new_recovery_code() -> str:
    """Return a fresh random recovery code in canonical form ("XXXX-XXXX-XXXX-XXXX")."""
    return _grouped("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(_LENGTH)))


def normalize_recovery_code(text: str) -> str:
    """Return the canonical form of a typed recovery code (the form to hash and compare).

    Raises InvalidCode when `text` cannot be a recovery code: not text, too long, wrong
    number of symbols, or a character outside the alphabet.
    """
    if not isinstance(text, str) or len(text) > _MAX_INPUT:
        raise InvalidCode("a recovery code is 16 letters and digits")
    # Check ASCII before upper(): "ß".upper() is "SS".
    if not text.isascii():
        raise InvalidCode("a recovery code uses only letters A-Z and digits 2-9")
    compact = text.replace(" ", "").replace("-", "").upper()
    if len(compact) != _LENGTH:
        raise InvalidCode("a recovery code is 16 letters and digits")
    if not _SYMBOLS.issuperset(compact):
        raise InvalidCode("a recovery code uses only letters A-Z and digits 2-9, without I L O")
    return _grouped(compact)
