"""The two-factor app's settings, read once through one typed object."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class TwoFactorSettings:
    @property
    def issuer(self) -> str:
        return str(getattr(settings, "KEYFOB_SITE_NAME", "Keyfob"))

    @property
    def totp_window(self) -> int:
        """Steps accepted each side of now (1 = ±30 s, what a phone's clock needs)."""
        return int(getattr(settings, "KEYFOB_TOTP_WINDOW", 1))

    @property
    def pending_setup_seconds(self) -> int:
        return int(getattr(settings, "KEYFOB_PENDING_SETUP_SECONDS", 600))

    @property
    def pending_signin_seconds(self) -> int:
        return int(getattr(settings, "KEYFOB_PENDING_SIGNIN_SECONDS", 300))

    @property
    def support_email(self) -> str:
        return str(getattr(settings, "KEYFOB_SUPPORT_EMAIL", "support@example.com"))

    @property
    def trust_days(self) -> int:
        return int(getattr(settings, "KEYFOB_TRUST_DAYS", 30))

    @property
    def reauth_seconds(self) -> int:
        """How long a password + code entered stays good for a sensitive change."""
        return int(getattr(settings, "KEYFOB_REAUTH_SECONDS", 600))

    @property
    def drift_max_steps(self) -> int:
        return int(getattr(settings, "KEYFOB_DRIFT_MAX_STEPS", 20))


app_settings = TwoFactorSettings()
