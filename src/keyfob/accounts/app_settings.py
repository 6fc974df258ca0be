"""The accounts app's settings: typed views of what site/settings.py read from KEYFOB_*.

Read at each access, so a test's ``settings`` override takes effect; defaults and checks
live in site/settings.py only.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


class AccountsSettings:
    @property
    def reauth_seconds(self) -> int:
        """How long a password (+ code) entered stays good for a sensitive change."""
        return int(settings.KEYFOB_REAUTH_SECONDS)

    @property
    def data_dir(self) -> Path:
        """Where ``keyfob demo-account`` keeps the demo account's credentials."""
        return Path(settings.KEYFOB_DATA_DIR)


app_settings = AccountsSettings()
