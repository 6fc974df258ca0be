from __future__ import annotations

import contextlib
import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation

from keyfob.accounts.models import User


class AccountPreferencesMiddleware:
    """A signed-in account's chosen language wins over the browser's Accept-Language, and
    its time zone is the one pages show times in.

    Runs after LocaleMiddleware and AuthenticationMiddleware. The footer's switch sets the
    language cookie, which LocaleMiddleware already honours for everyone.

    The language a signed-in page is shown in is kept on the account (``last_language``):
    notices are written in it, so a customer who reads the portal in French gets French
    e-mails even with no language chosen in the profile. One UPDATE, only when it changes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None else ""
        if language and "django_language" not in request.COOKIES:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        shown = getattr(request, "LANGUAGE_CODE", "")
        if isinstance(user, User) and shown and shown != user.last_language:
            User.objects.filter(pk=user.pk).update(last_language=shown)
            user.last_language = shown
        zone = getattr(user, "time_zone", "") if user is not None else ""
        timezone.deactivate()
        # An unknown zone name leaves times in UTC.
        with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
            if zone:
                timezone.activate(zoneinfo.ZoneInfo(zone))
        return self.get_response(request)
