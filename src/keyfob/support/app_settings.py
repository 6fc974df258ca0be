"""The support desk's settings, read through one typed object."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class SupportSettings:
    @property
    def four_eyes(self) -> bool:
        """Whether the staff member who disables must differ from those who did the checks."""
        return bool(getattr(settings, "KEYFOB_SUPPORT_FOUR_EYES", True))

    @property
    def code_hours(self) -> int:
        """How long an e-mailed check code stays valid."""
        return int(getattr(settings, "KEYFOB_SUPPORT_CODE_HOURS", 24))

    @property
    def code_tries(self) -> int:
        """Wrong codes that burn an e-mailed check code."""
        return int(getattr(settings, "KEYFOB_SUPPORT_CODE_TRIES", 5))

    @property
    def cancel_link_days(self) -> int:
        """How long the cancel link in the "request opened" e-mail works."""
        return int(getattr(settings, "KEYFOB_SUPPORT_CANCEL_LINK_DAYS", 30))


app_settings = SupportSettings()
