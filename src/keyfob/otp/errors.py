"""The exceptions `keyfob.otp` raises, and that callers raise with the same meaning.

    KeyfobError
     ├── InvalidCode      a code (or recovery code) is malformed or wrong
     ├── CodeReused       a code was right but its step/counter was already used
     ├── Throttled        too many attempts; `retry_after` says for how long
     ├── InvalidSecret    text is not a base32 secret
     ├── InvalidKeyURI    an otpauth:// URI is malformed (the message says what)
     └── ParameterError   a parameter is out of range (also a ValueError)

The verification functions never raise for a wrong or junk *code* (they return None);
they raise ParameterError only when the caller passes bad parameters, which is a bug.
`CodeReused` and `Throttled` are raised by the callers that own state (portal, SSH).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "CodeReused",
    "InvalidCode",
    "InvalidKeyURI",
    "InvalidSecret",
    "KeyfobError",
    "ParameterError",
    "Throttled",
]


class KeyfobError(Exception):
    """Base class of every error Keyfob raises on purpose.

    ``code`` names the error for the surfaces (portal, API, SSH): each looks its text up
    in its own message table by this code, instead of testing the class.
    """

    code: str = "error"


class InvalidCode(KeyfobError):
    """A one-time or recovery code is malformed or does not match."""

    code = "invalid_code"


class CodeReused(KeyfobError):
    """A code matched, but its time step or counter was already consumed."""

    code = "code_reused"


class Throttled(KeyfobError):
    """Too many failed attempts; try again after `retry_after` seconds."""

    code = "throttled"
    retry_after: float

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        self.retry_after = float(retry_after)
        if message is None:
            message = f"too many attempts; try again in {math.ceil(self.retry_after)} s"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickles as cls(*args); keep retry_after through a round trip.
        return (type(self), (self.retry_after, str(self)))


class InvalidSecret(KeyfobError, ValueError):
    """Text that should hold a base32 secret does not."""

    code = "invalid_secret"


class InvalidKeyURI(KeyfobError, ValueError):
    """An otpauth:// key URI is malformed; the message says what is wrong."""

    code = "invalid_key_uri"


class ParameterError(KeyfobError, ValueError):
    """A parameter (digits, algorithm, period, window, counter, secret…) is out of range."""

    code = "invalid_parameter"
