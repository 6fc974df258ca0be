"""Small pieces of text several pages share."""

from __future__ import annotations

import math

from django.utils.translation import ngettext


def wait_text(seconds: float) -> str:
    """'45 seconds', '2 minutes': how long until the next attempt, rounded up."""
    if seconds < 60:
        n = max(1, math.ceil(seconds))
        return ngettext("%(n)d second", "%(n)d seconds", n) % {"n": n}
    n = math.ceil(seconds / 60)
    return ngettext("%(n)d minute", "%(n)d minutes", n) % {"n": n}
