"""The two-factor app's settings: typed views of what site/settings.py read from KEYFOB_*.

Read at each access, so a test's ``settings`` override takes effect; defaults and checks
live in site/settings.py only.
"""

from __future__ import annotations

from django.conf import settings


class TwoFactorSettings:
    # Fixed by design, not settings: how long a half-done setup or sign-in waits, how long
    # new recovery codes are shown, and how far a counter-based (HOTP) authenticator may
    # have run ahead.
    pending_setup_seconds = 600
    pending_signin_seconds = 300
    # How long new recovery codes stay viewable and downloadable from the session that
    # made them (a session copied later must not read them).
    fresh_codes_seconds = 600
    drift_max_steps = 20
    # How long a WebAuthn challenge may be answered, and how many security keys an account
    # may have (like apps: a cap keeps the Security page and the options small).
    webauthn_challenge_seconds = 300
    max_security_keys = 10

    @property
    def issuer(self) -> str:
        return str(settings.KEYFOB_SITE_NAME)

    @property
    def totp_window(self) -> int:
        """Steps accepted each side of now (1 = ±30 s, what a phone's clock needs)."""
        return int(settings.KEYFOB_TOTP_WINDOW)

    @property
    def support_email(self) -> str:
        return str(settings.KEYFOB_SUPPORT_EMAIL)

    @property
    def trust_days(self) -> int:
        return int(settings.KEYFOB_TRUST_DAYS)

    @property
    def webauthn_rp_id(self) -> str:
        """The relying party id security keys and passkeys are registered under."""
        return str(settings.KEYFOB_WEBAUTHN_RP_ID)

    @property
    def staff_phishing_resistant(self) -> bool:
        """Whether staff pages need a sign-in made with a security key or passkey."""
        return bool(settings.KEYFOB_STAFF_PHISHING_RESISTANT)


app_settings = TwoFactorSettings()
