"""The API's settings: typed views of what site/settings.py read from KEYFOB_*.

Read at each access, so a test's ``settings`` override takes effect; defaults and checks
live in site/settings.py only.
"""

from __future__ import annotations

from django.conf import settings


class ApiSettings:
    @property
    def max_body(self) -> int:
        """Largest request body accepted, in bytes."""
        return int(settings.KEYFOB_API_MAX_BODY)


app_settings = ApiSettings()
