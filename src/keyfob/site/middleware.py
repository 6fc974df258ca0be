"""The portal's own middleware: request ids and logs, response headers, session lifetime."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.urls import resolve
from django.utils import translation
from django.utils.translation import gettext as _

from keyfob.accounts import sessions as signin_sessions
from keyfob.core import clock
from keyfob.site import ops
from keyfob.site.logging import current_request

log = logging.getLogger("keyfob.request")

# Answered without a session: a probe must leave no cookie and no session row behind.
OPS_PATHS = ("/healthz", "/readyz", "/metrics")
# The JSON API for servers (keyfob.api): its own middleware stack (ApiMiddleware).
API_PREFIX = "/api/"
# Never a signed-in session's activity: probes, and the API (server tokens, no cookies).
SESSIONLESS_PATHS = (*OPS_PATHS, API_PREFIX)

# No inline script or style anywhere: a stylesheet and images from the site itself only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class RequestLogMiddleware:
    """Give each request an id (``X-Request-ID``), time it, and log one line for it.

    The line has the method, the path without its query string, the status and the
    duration; the latency also feeds /metrics (per process, see ``ops``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Our own id, not one a client sends: an id in logs must not be chosen by a client.
        request.request_id = uuid.uuid4().hex  # type: ignore[attr-defined]
        token = current_request.set(request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            ops.REQUEST_LATENCY.observe(elapsed)
            response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            return response
        finally:
            current_request.reset(token)


class ApiMiddleware:
    """The API's own middleware stack: a request under ``/api/`` goes from here straight to
    its view, past the portal's middleware.

    The API answers server tokens with JSON; sessions, sign-in, messages, CSRF (its views
    are exempt: a token is a header no browser sends by itself), static files and language
    negotiation are the portal's. What an API answer does keep: the request id and log line
    and HTTPS handling (the middleware before this one), the host check (an unknown Host is
    refused, as everywhere), the default language (a server sends no Accept-Language: the
    language a previous page left active in this worker must not reach an event), and the
    headers the portal's middleware would add to it. It matters because the SSH verify is
    the hottest request Keyfob answers, and the portal's stack cost it about a fifth of its
    time (issue 23).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for a host not in KEYFOB_ALLOWED_HOSTS
        translation.activate(settings.LANGUAGE_CODE)
        match = resolve(request.path_info)
        request.resolver_match = match
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
        # What the portal's stack adds to every answer: the length (CommonMiddleware; else
        # the server sends the body in chunks), and ContentSecurityPolicyMiddleware's,
        # XFrameOptionsMiddleware's and NoStoreMiddleware's headers.
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("X-Frame-Options", settings.X_FRAME_OPTIONS)
        response["Cache-Control"] = "no-store"
        return response


class ContentSecurityPolicyMiddleware:
    """A fixed Content-Security-Policy: pages run no inline script and no inline style.

    (Django 5.2 has none built in; X-Frame-Options, Referrer-Policy and nosniff come from
    Django's own middleware and settings.)
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class NoStoreMiddleware:
    """Pages may show secrets, codes or account data: no cache keeps a copy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/static/"):
            response["Cache-Control"] = "no-store"
        return response


STARTED_KEY = "keyfob.started"
SEEN_KEY = "keyfob.seen"
# Record activity at most once a minute: a session write per request would be wasted work.
SEEN_RESOLUTION = 60.0


@receiver(user_logged_in, dispatch_uid="keyfob.session-clock")
def _start_session_clock(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    """A sign-in (a new session id) starts both clocks afresh."""
    if request is not None and hasattr(request, "session"):
        now = clock.time()
        request.session[STARTED_KEY] = now
        request.session[SEEN_KEY] = now


class SessionLifetimeMiddleware:
    """End a signed-in session 12 hours after sign-in, or after 30 minutes of inactivity.

    Both times are kept in the session (``KEYFOB_SESSION_MAX_AGE``, ``KEYFOB_SESSION_IDLE``)
    and read from :mod:`keyfob.core.clock`. A session signed in before this middleware saw it
    starts counting at its first request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(SESSIONLESS_PATHS):
            return self.get_response(request)
        now = clock.time()
        if request.user.is_authenticated and self._expired(request, now):
            logout(request)
            messages.info(request, _("Your session has ended. Please sign in again."))
        response = self.get_response(request)
        # After the view: a sign-in that just happened starts its clock here.
        if request.user.is_authenticated:
            session = request.session
            if STARTED_KEY not in session:
                session[STARTED_KEY] = now
                session[SEEN_KEY] = now
            elif now - float(session.get(SEEN_KEY, 0)) >= SEEN_RESOLUTION:
                session[SEEN_KEY] = now
                # The Security page's "last active": at the same pace, one UPDATE a minute.
                signin_sessions.seen(request)
        return response

    @staticmethod
    def _expired(request: HttpRequest, now: float) -> bool:
        session = request.session
        if STARTED_KEY not in session:
            return False
        started = float(session[STARTED_KEY])
        seen = float(session.get(SEEN_KEY, started))
        return (
            now - started > settings.KEYFOB_SESSION_MAX_AGE
            or now - seen > settings.KEYFOB_SESSION_IDLE
        )
