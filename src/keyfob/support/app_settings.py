"""The support desk's settings: typed views of what site/settings.py read from KEYFOB_*.

Read at each access, so a test's ``settings`` override takes effect; defaults and checks
live in site/settings.py only.
"""

from __future__ import annotations

from django.conf import settings


class SupportSettings:
    # Fixed by design, not settings: how long an e-mailed check code lasts and how many
    # wrong tries burn it, and how long the cancel link in "request opened" works.
    code_hours = 24
    code_tries = 5
    cancel_link_days = 30
    # How long after the password step the customer may write the request and follow it on
    # its page: far longer than the 5-minute code step, so a long message is never lost.
    request_window_seconds = 3600

    @property
    def four_eyes(self) -> bool:
        """Whether the staff member who disables must differ from those who did the checks."""
        return bool(settings.KEYFOB_SUPPORT_FOUR_EYES)

    @property
    def support_email(self) -> str:
        """Where customers send their documents (KEYFOB_SUPPORT_EMAIL)."""
        return str(settings.KEYFOB_SUPPORT_EMAIL)


app_settings = SupportSettings()
