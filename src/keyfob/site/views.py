"""Keyfob's own error pages: styled, translated, with a way back (handler404 and the rest in
site/urls.py, CSRF_FAILURE_VIEW in settings). They say nothing of Django or DEBUG."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader

log = logging.getLogger("keyfob.request")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/400.html", status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/403.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", status=404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its anti-forgery token: most often a page left open past a
    sign-out, or cookies blocked. Django's own logger records the reason; the page says
    what to do, not why in Django's terms."""
    return render(request, "errors/csrf.html", status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """Rendered without the request's context: whatever failed (the database, a session)
    must not fail again here. The page still has the site's look and a way back."""
    try:
        html = loader.get_template("errors/500.html").render(
            {"site_name": settings.KEYFOB_SITE_NAME}
        )
    except Exception:  # the last resort must answer, whatever broke
        log.exception("error_page_failed")
        return HttpResponseServerError("Server error", content_type="text/plain")
    return HttpResponseServerError(html)
