"""One-time passwords for Keyfob: HOTP (RFC 4226), TOTP (RFC 6238), otpauth:// key URIs,
secrets and recovery codes.

Standard library only: the portal (Django) and the SSH tools both import it, and SSH
servers have no Django. Stateless: verification says which step or counter matched; the
caller stores it and passes it back as `last_step` / `counter`.
"""

from keyfob.otp.codes import (
    ALGORITHMS,
    drift_steps,
    hotp,
    time_step,
    totp,
    verify_hotp,
    verify_totp,
)
from keyfob.otp.errors import (
    CodeReused,
    InvalidCode,
    InvalidKeyURI,
    InvalidSecret,
    KeyfobError,
    ParameterError,
    Throttled,
)
from keyfob.otp.keys import (
    MIN_SECRET_BYTES,
    b32decode_secret,
    b32encode_secret,
    format_secret_groups,
    random_secret,
)
from keyfob.otp.recovery import new_recovery_code, normalize_recovery_code
from keyfob.otp.uri import KeyURI

__all__ = [
    "ALGORITHMS",
    "MIN_SECRET_BYTES",
    "CodeReused",
    "InvalidCode",
    "InvalidKeyURI",
    "InvalidSecret",
    "KeyURI",
    "KeyfobError",
    "ParameterError",
    "Throttled",
    "b32decode_secret",
    "b32encode_secret",
    "drift_steps",
    "format_secret_groups",
    "hotp",
    "new_recovery_code",
    "normalize_recovery_code",
    "random_secret",
    "time_step",
    "totp",
    "verify_hotp",
    "verify_totp",
]
