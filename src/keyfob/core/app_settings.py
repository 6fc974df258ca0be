"""The shared layer's settings: typed views of what site/settings.py read from KEYFOB_*.

Read at each access, so a test's ``settings`` override takes effect; defaults and checks
live in site/settings.py only.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


class CoreSettings:
    @property
    def secret_keys(self) -> str:
        """The key ring for secrets at rest (``KEYFOB_SECRET_KEYS``); '' uses a generated one."""
        return str(settings.KEYFOB_SECRET_KEYS or "")

    @property
    def data_dir(self) -> Path:
        """Where a generated key ring is kept (mode 0600)."""
        return Path(settings.KEYFOB_DATA_DIR)


app_settings = CoreSettings()
