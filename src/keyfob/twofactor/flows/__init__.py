"""What the two-factor app does, by what it does: checking a code (``verify``), turning 2FA
on and off (``setup``), recovery codes (``recovery``) and trusted browsers (``browsers``).

Callers use ``flows.<name>``; the names below are the app's whole public surface.
"""

from keyfob.twofactor.flows.browsers import (
    revoke_on_credentials_change,
    revoke_trusted_browsers,
    trust_browser,
    trusted_browsers,
    use_trusted_browser,
)
from keyfob.twofactor.flows.recovery import (
    RECOVERY_CODES,
    recovery_codes_left,
    regenerate_recovery_codes,
    replace_recovery_codes,
    use_recovery_code,
)
from keyfob.twofactor.flows.setup import (
    MAX_AUTHENTICATORS,
    By,
    LastAuthenticator,
    TooManyAuthenticators,
    confirm_setup,
    disable,
    key_uri,
    remove_authenticator,
    rename_authenticator,
    setup_expired,
    setup_seconds_left,
    start_setup,
    turned_off_by_support,
)
from keyfob.twofactor.flows.verify import (
    ClockDrift,
    Event,
    Factor,
    NotEnrolled,
    SetupExpired,
    confirmed_authenticator,
    confirmed_authenticators,
    has_2fa,
    verify_code,
)

__all__ = [
    "MAX_AUTHENTICATORS",
    "RECOVERY_CODES",
    "By",
    "ClockDrift",
    "Event",
    "Factor",
    "LastAuthenticator",
    "NotEnrolled",
    "SetupExpired",
    "TooManyAuthenticators",
    "confirm_setup",
    "confirmed_authenticator",
    "confirmed_authenticators",
    "disable",
    "has_2fa",
    "key_uri",
    "recovery_codes_left",
    "regenerate_recovery_codes",
    "remove_authenticator",
    "rename_authenticator",
    "replace_recovery_codes",
    "revoke_on_credentials_change",
    "revoke_trusted_browsers",
    "setup_expired",
    "setup_seconds_left",
    "start_setup",
    "trust_browser",
    "trusted_browsers",
    "turned_off_by_support",
    "use_recovery_code",
    "use_trusted_browser",
    "verify_code",
]
