from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from keyfob.support import flows as support


def site(request: HttpRequest) -> dict[str, object]:
    context: dict[str, object] = {"site_name": settings.KEYFOB_SITE_NAME}
    # Staff see in the menu how many approved requests wait for them to turn 2FA off (the
    # four-eyes hand-off): one small query, on staff pages only.
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        context["support_waiting"] = lambda: len(support.waiting_for(user))
    return context
