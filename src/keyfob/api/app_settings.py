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

    @property
    def ssh_cert_hours(self) -> int:
        """Lifetime of an SSH certificate, in hours (1 to 24)."""
        return int(settings.KEYFOB_SSH_CERT_HOURS)

    @property
    def ssh_cert_source_address(self) -> bool:
        """Whether a certificate holds only from the address that asked for it."""
        return bool(settings.KEYFOB_SSH_CERT_SOURCE_ADDRESS)


app_settings = ApiSettings()
