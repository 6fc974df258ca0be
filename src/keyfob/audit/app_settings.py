"""The audit app's settings (e-mail notices), read through one typed object.

Each ``KEYFOB_*`` name is looked up in Django's settings first and, when the settings
module does not define it, in the environment, so the command line and ``keyfob serve``
agree without a settings change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings


def _setting(name: str, default: str) -> str:
    if hasattr(settings, name):
        value = getattr(settings, name)
        return "" if value is None else str(value)
    return os.environ.get(name, default)


@dataclass(frozen=True)
class AuditSettings:
    @property
    def smtp_url(self) -> str:
        """``smtp://``, ``smtps://`` or ``smtp+starttls://user:pass@host:port``; '' prints mail."""
        return _setting("KEYFOB_SMTP_URL", "").strip()

    @property
    def mail_from(self) -> str:
        return _setting("KEYFOB_MAIL_FROM", "") or str(settings.DEFAULT_FROM_EMAIL)

    @property
    def mail_max_attempts(self) -> int:
        """Attempts before a notice is marked failed: 55 with the default backoff ≈ 2 days."""
        return max(1, int(_setting("KEYFOB_MAIL_MAX_ATTEMPTS", "55")))

    @property
    def mail_backoff_seconds(self) -> int:
        """Wait after the first failed attempt; it doubles after each one, up to the cap."""
        return max(1, int(_setting("KEYFOB_MAIL_BACKOFF_SECONDS", "30")))

    @property
    def mail_backoff_max_seconds(self) -> int:
        return max(1, int(_setting("KEYFOB_MAIL_BACKOFF_MAX_SECONDS", "3600")))

    @property
    def mail_timeout_seconds(self) -> float:
        """Socket timeout for the SMTP server (connect and each command)."""
        return float(_setting("KEYFOB_MAIL_TIMEOUT_SECONDS", "10"))

    @property
    def mail_interval_seconds(self) -> float:
        """How often the background sender and ``send-mail --loop`` look for due notices."""
        return float(_setting("KEYFOB_MAIL_INTERVAL_SECONDS", "5"))

    @property
    def mail_lease_seconds(self) -> int:
        """How long a claim holds; a sender that died is taken over after this."""
        return int(_setting("KEYFOB_MAIL_LEASE_SECONDS", "300"))

    @property
    def outbox_retention_days(self) -> int:
        """How long a sent or failed notice (its address, IP and browser) stays in the outbox."""
        return max(1, int(_setting("KEYFOB_OUTBOX_RETENTION_DAYS", "30")))

    @property
    def wrong_codes_notice_seconds(self) -> int:
        """At most one "someone may know your password" notice per account in this span."""
        return int(_setting("KEYFOB_WRONG_CODES_NOTICE_SECONDS", "3600"))

    @property
    def site_name(self) -> str:
        return str(getattr(settings, "KEYFOB_SITE_NAME", "Keyfob"))


app_settings = AuditSettings()
