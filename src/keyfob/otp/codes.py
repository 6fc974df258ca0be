"""HOTP (RFC 4226) and TOTP (RFC 6238): computing codes and checking them.

Verification is stateless: it returns *which* time step or counter matched, and the
caller stores it and refuses anything at or below it next time (`last_step`). It never
raises for a wrong or malformed code, only for bad parameters (ParameterError).
"""

from __future__ import annotations

import hmac
import struct

from keyfob.otp.errors import ParameterError
from keyfob.otp.keys import MIN_SECRET_BYTES

__all__ = [
    "ALGORITHMS",
    "MAX_DRIFT_STEPS",
    "MAX_LOOK_AHEAD",
    "MAX_WINDOW",
    "drift_steps",
    "hotp",
    "time_step",
    "totp",
    "verify_hotp",
    "verify_totp",
]

# Key URI algorithm names -> hashlib names. With a string name hmac.digest takes the
# one-shot C path: no HMAC object, the cheapest HMAC the standard library offers.
_DIGEST_NAMES = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
ALGORITHMS = tuple(_DIGEST_NAMES)
_MOD = {6: 10**6, 7: 10**7, 8: 10**8}
MAX_WINDOW = 10
MAX_LOOK_AHEAD = 100
MAX_DRIFT_STEPS = 1000
_MAX_COUNTER = 2**64 - 1
# Times at or beyond this are refused, keeping every step within the 64-bit counter.
_MAX_AT = float(2**63)
# Longest text looked at as a code: room for digits plus grouping spaces. Anything longer
# is refused before any other work, so a 10 kB "code" costs one len().
_MAX_CODE_INPUT = 32

_pack_counter = struct.Struct(">Q").pack
_unpack_word = struct.Struct(">I").unpack_from
_digest = hmac.digest
_compare = hmac.compare_digest


def _digest_name(secret: bytes, digits: int, algorithm: str) -> str:
    """Check the parameters every function shares; return the hashlib name to use."""
    if type(secret) is not bytes or len(secret) < MIN_SECRET_BYTES:
        raise ParameterError(f"the secret must be bytes, at least {MIN_SECRET_BYTES} of them")
    if type(digits) is not int or digits not in _MOD:
        raise ParameterError(f"digits must be 6, 7 or 8, not {digits!r}")
    name = _DIGEST_NAMES.get(algorithm) if type(algorithm) is str else None
    if name is None:
        raise ParameterError(f"algorithm must be SHA1, SHA256 or SHA512, not {algorithm!r}")
    return name


def _check_counter(counter: int, what: str = "counter") -> None:
    if type(counter) is not int or not 0 <= counter <= _MAX_COUNTER:
        raise ParameterError(f"{what} must be an int from 0 to 2**64-1, not {counter!r}")


def _code(secret: bytes, counter: int, name: str, digits: int) -> str:
    """RFC 4226 section 5.3: HMAC, dynamic truncation, then `digits` decimal digits."""
    mac = _digest(secret, _pack_counter(counter), name)
    value = _unpack_word(mac, mac[-1] & 0x0F)[0] & 0x7FFFFFFF
    return str(value % _MOD[digits]).zfill(digits)


def _clean_code(code: str, digits: int) -> str | None:
    """Return `code` without spaces if it is exactly `digits` ASCII digits, else None."""
    if type(code) is not str:
        # A str subclass is read as plain text; anything else (None, bytes, int) is junk.
        if not isinstance(code, str):
            return None
        code = str.__str__(code)
    if len(code) > _MAX_CODE_INPUT:
        return None
    if " " in code:
        code = code.replace(" ", "")
    # isdigit() alone accepts Arabic-Indic and full-width digits (int() parses them too);
    # within ASCII, though, only 0-9 are digits, so the isascii() test first makes it exact.
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    return code


def _step(at: float, period: int, t0: int) -> int:
    """`time_step` without keyword arguments, for the verification hot path."""
    if type(period) is not int or period < 1:
        raise ParameterError(f"period must be an int of at least 1 second, not {period!r}")
    if type(t0) is not int or t0 < 0:
        raise ParameterError(f"t0 must be a non-negative int (Unix time), not {t0!r}")
    if type(at) is not float and type(at) is not int:
        # Rare: an int or float subclass (numpy.float64 is one). bool, str, Decimal and
        # None are refused.
        if not isinstance(at, int | float) or isinstance(at, bool):
            raise ParameterError(f"at must be a Unix time in seconds, not {at!r}")
        at = float(at) if isinstance(at, float) else int(at)
    # Written so that NaN fails too (every comparison with NaN is false), and infinity or
    # absurd times fail the upper bound instead of overflowing later.
    if not t0 <= at < _MAX_AT:
        raise ParameterError(f"at must be a finite time not before t0={t0}, not {at!r}")
    # at >= t0 >= 0, so int() (truncation) is floor(), and integer // is exact.
    return (int(at) - t0) // period


def time_step(at: float, *, period: int = 30, t0: int = 0) -> int:
    """Return the RFC 6238 time step T = floor((at - t0) / period) for Unix time `at`.

    Raises ParameterError if period < 1, t0 < 0, or `at` is not a number, not finite,
    before `t0` or beyond 2**63 seconds.
    """
    return _step(at, period, t0)


def hotp(secret: bytes, counter: int, *, digits: int = 6, algorithm: str = "SHA1") -> str:
    """Return the RFC 4226 code for `counter` as a string of `digits` digits.

    Raises ParameterError for a secret under 16 bytes, digits outside 6..8, an algorithm
    other than SHA1/SHA256/SHA512, or a counter outside 0..2**64-1.
    """
    name = _digest_name(secret, digits, algorithm)
    _check_counter(counter)
    return _code(secret, counter, name, digits)


def totp(
    secret: bytes,
    at: float,
    *,
    period: int = 30,
    digits: int = 6,
    algorithm: str = "SHA1",
    t0: int = 0,
) -> str:
    """Return the RFC 6238 code for Unix time `at`. Raises ParameterError like `hotp`."""
    name = _digest_name(secret, digits, algorithm)
    return _code(secret, _step(at, period, t0), name, digits)


def verify_totp(
    secret: bytes,
    code: str,
    at: float,
    *,
    window: int = 1,
    last_step: int = -1,
    period: int = 30,
    digits: int = 6,
    algorithm: str = "SHA1",
    t0: int = 0,
) -> int | None:
    """Return the time step that `code` matches, or None.

    Steps from step(at) - window to step(at) + window are tried, but never one at or below
    `last_step` (the last step the caller accepted; -1 when none). If the code matches
    more than one step (a 1-in-a-million coincidence) the highest is returned, so storing
    it burns every step the code could be replayed at. A malformed code (not exactly
    `digits` ASCII digits once spaces are removed, or not a str) returns None.
    Raises ParameterError for bad parameters (see `hotp`; window 0..10, last_step an int).
    """
    name = _digest_name(secret, digits, algorithm)
    if type(window) is not int or not 0 <= window <= MAX_WINDOW:
        raise ParameterError(f"window must be an int from 0 to {MAX_WINDOW}, not {window!r}")
    if type(last_step) is not int:
        raise ParameterError(f"last_step must be an int, not {last_step!r}")
    step = _step(at, period, t0)
    wanted = _clean_code(code, digits)
    if wanted is None:
        return None
    # _step keeps step below 2**63, so step + window cannot leave the 64-bit counter range.
    first = step - window
    if first <= last_step:
        first = last_step + 1
    if first < 0:
        first = 0
    mod = _MOD[digits]
    matched = None
    # Every candidate is computed and compared, with no early exit, so the time taken
    # does not say which step (if any) matched.
    for candidate in range(first, step + window + 1):
        mac = _digest(secret, _pack_counter(candidate), name)
        value = _unpack_word(mac, mac[-1] & 0x0F)[0] & 0x7FFFFFFF
        if _compare(str(value % mod).zfill(digits), wanted):
            matched = candidate
    return matched


def verify_hotp(
    secret: bytes,
    code: str,
    counter: int,
    *,
    look_ahead: int = 10,
    digits: int = 6,
    algorithm: str = "SHA1",
) -> int | None:
    """Return the counter in `counter .. counter + look_ahead` that `code` matches, or None.

    `counter` is the next unused counter (the caller stores matched + 1). If the code
    matches several counters the highest is returned, so it cannot be replayed later in
    the look-ahead range. A malformed code returns None. Raises ParameterError for bad
    parameters (see `hotp`; look_ahead 0..100).
    """
    name = _digest_name(secret, digits, algorithm)
    _check_counter(counter)
    if type(look_ahead) is not int or not 0 <= look_ahead <= MAX_LOOK_AHEAD:
        raise ParameterError(
            f"look_ahead must be an int from 0 to {MAX_LOOK_AHEAD}, not {look_ahead!r}"
        )
    wanted = _clean_code(code, digits)
    if wanted is None:
        return None
    matched = None
    for candidate in range(counter, min(counter + look_ahead, _MAX_COUNTER) + 1):
        if _compare(_code(secret, candidate, name, digits), wanted):
            matched = candidate
    return matched


def drift_steps(
    secret: bytes,
    code: str,
    at: float,
    *,
    max_steps: int = 20,
    period: int = 30,
    digits: int = 6,
    algorithm: str = "SHA1",
    t0: int = 0,
) -> int | None:
    """Return the signed step offset within ±max_steps that `code` matches, or None.

    -8 means the code is the one for 8 steps ago: with 30 s steps the phone's clock is
    about 4 minutes slow. The offset nearest to 0 wins. This is advice for a message after
    `verify_totp` failed; it must never be used to accept a code. A malformed code returns
    None. Raises ParameterError for bad parameters (max_steps 0..1000).
    """
    name = _digest_name(secret, digits, algorithm)
    if type(max_steps) is not int or not 0 <= max_steps <= MAX_DRIFT_STEPS:
        raise ParameterError(
            f"max_steps must be an int from 0 to {MAX_DRIFT_STEPS}, not {max_steps!r}"
        )
    step = _step(at, period, t0)
    wanted = _clean_code(code, digits)
    if wanted is None:
        return None
    for distance in range(max_steps + 1):
        # Behind first: a slow phone clock is the commoner case.
        for offset in (-distance, distance) if distance else (0,):
            candidate = step + offset
            if 0 <= candidate <= _MAX_COUNTER and _compare(
                _code(secret, candidate, name, digits), wanted
            ):
                return offset
    return None
