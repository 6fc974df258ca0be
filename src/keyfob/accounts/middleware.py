from __future__ import annotations

import contextlib
import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone, translation


class AccountPreferencesMiddleware:
    """A signed-in account's chosen language wins over the browser's Accept-Language, and
    its time zone is the one pages show times in.

    Runs after LocaleMiddleware and AuthenticationMiddleware. The footer's switch sets the
    language cookie, which LocaleMiddleware already honours for everyone.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None else ""
        if language and "django_language" not in request.COOKIES:
            translation.activate(language)
            request.LANGUAGE_CODE = language
        zone = getattr(user, "time_zone", "") if user is not None else ""
        timezone.deactivate()
        # An unknown zone name leaves times in UTC.
        with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
            if zone:
                timezone.activate(zoneinfo.ZoneInfo(zone))
        return self.get_response(request)
