"""The audit app's settings: typed views of what site/settings.py read from KEYFOB_*.

Read at each access, so a test's ``settings`` override takes effect; defaults and checks
live in site/settings.py only.
"""

from __future__ import annotations

from django.conf import settings


class AuditSettings:
    # Fixed by design, not settings. The backoff (30 s doubling up to an hour) is what
    # makes KEYFOB_MAIL_MAX_ATTEMPTS' 55 about two days; a sender that died is taken over
    # after the lease; "someone may know your password" is sent at most hourly.
    mail_backoff_seconds = 30
    mail_backoff_max_seconds = 3600
    mail_timeout_seconds = 10.0
    mail_lease_seconds = 300
    wrong_codes_notice_seconds = 3600

    @property
    def trusted_proxies(self) -> list[str]:
        """Reverse proxies (addresses or CIDRs, checked at start-up) whose X-Forwarded-For
        gives the client address."""
        return list(settings.KEYFOB_TRUSTED_PROXIES)

    @property
    def smtp_url(self) -> str:
        """``smtp://``, ``smtps://`` or ``smtp+starttls://user:pass@host:port``; '' prints mail."""
        return str(settings.KEYFOB_SMTP_URL or "").strip()

    @property
    def mail_from(self) -> str:
        return str(settings.KEYFOB_MAIL_FROM)

    @property
    def mail_max_attempts(self) -> int:
        """Attempts before a notice is marked failed: 55 with the backoff ≈ 2 days."""
        return int(settings.KEYFOB_MAIL_MAX_ATTEMPTS)

    @property
    def mail_interval_seconds(self) -> float:
        """How often the background sender and ``send-mail --loop`` look for due notices."""
        return float(settings.KEYFOB_MAIL_INTERVAL_SECONDS)

    @property
    def outbox_retention_days(self) -> int:
        """How long a sent or failed notice (its address, IP and browser) stays in the outbox."""
        return int(settings.KEYFOB_OUTBOX_RETENTION_DAYS)

    @property
    def activity_retention_days(self) -> int:
        """How long security events are kept (``keyfob prune-activity``)."""
        return int(settings.KEYFOB_ACTIVITY_RETENTION_DAYS)

    @property
    def site_name(self) -> str:
        return str(settings.KEYFOB_SITE_NAME)


app_settings = AuditSettings()
