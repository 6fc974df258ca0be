"""The teams' settings: typed views of what site/settings.py read from KEYFOB_*."""

from __future__ import annotations

from django.conf import settings


class TeamsSettings:
    @property
    def rights(self) -> list[str]:
        """The rights an owner can grant (KEYFOB_GRANT_RIGHTS)."""
        return list(settings.KEYFOB_GRANT_RIGHTS)


app_settings = TeamsSettings()
