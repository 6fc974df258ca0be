"""The API's settings, read from Django's settings (``KEYFOB_API_*``) with safe defaults."""

from __future__ import annotations

from django.conf import settings


class AppSettings:
    @property
    def max_body(self) -> int:
        """Largest request body accepted, in bytes (``KEYFOB_API_MAX_BODY``, default 4096)."""
        return int(getattr(settings, "KEYFOB_API_MAX_BODY", 4096))


app_settings = AppSettings()
