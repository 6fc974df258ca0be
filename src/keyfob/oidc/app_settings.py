"""The OpenID Connect provider's settings: typed views of what site/settings.py read from
KEYFOB_* (read at each access, so a test's ``settings`` override takes effect)."""

from __future__ import annotations

from django.conf import settings


class OidcSettings:
    # Fixed by design, not settings. Back-channel logouts are retried with the outbox's
    # backoff (30 s doubling up to an hour): 30 attempts is about a day, longer than an
    # app's session is worth ending late. A post waits 5 s at most; a claim lasts a minute.
    logout_max_attempts = 30
    logout_timeout_seconds = 5.0
    logout_lease_seconds = 60

    @property
    def issuer(self) -> str:
        """The issuer URL, or "" to take it from the request."""
        return str(settings.KEYFOB_OIDC_ISSUER)

    @property
    def access_token_seconds(self) -> int:
        return int(settings.KEYFOB_OIDC_ACCESS_TOKEN_SECONDS)

    @property
    def refresh_token_days(self) -> int:
        return int(settings.KEYFOB_OIDC_REFRESH_TOKEN_DAYS)

    @property
    def reauth_seconds(self) -> int:
        """How recent a proof must be for what asks for a fresh one."""
        return int(settings.KEYFOB_REAUTH_SECONDS)


app_settings = OidcSettings()
