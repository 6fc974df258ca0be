"""Operations endpoints: /healthz, /readyz and /metrics. JSON or text, no session, no secret.

Counters in /metrics are read from the database (security events, and the notice outbox
when it exists), so every process behind a load balancer reports the same totals. The
request latency histogram is the one exception: it is kept in memory per process (a
gunicorn worker each), so a scrape sees the worker that answered it and the series restarts
with the worker.
"""

from __future__ import annotations

import bisect
import hmac
import threading
from collections.abc import Iterable

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock, throttle
from keyfob.core.models import ThrottleFailure


class Histogram:
    """A Prometheus histogram in memory, safe across threads."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.bounds = sorted(buckets)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.bounds, value)] += 1
            self._sum += value

    def lines(self, name: str) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, count in zip([*self.bounds, float("inf")], counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            out.append(f'{name}_bucket{{le="{le}"}} {running}')
        out += [f"{name}_sum {total:.6f}", f"{name}_count {running}"]
        return out


REQUEST_LATENCY = Histogram([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])


def _json(data: dict[str, object], status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers. Touches nothing else, so a slow database does not kill it."""
    return _json({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    """The database answers and every migration is applied: 200, else 503 saying which."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return _json({"status": "unavailable", "database": "unreachable"}, status=503)
    if pending:
        return _json(
            {"status": "unavailable", "database": "ok", "migrations": "pending"}, status=503
        )
    return _json({"status": "ok", "database": "ok", "migrations": "applied"})


def _authorized(request: HttpRequest) -> bool:
    token = settings.KEYFOB_METRICS_TOKEN
    if not token:
        raise Http404()
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def _family(name: str, kind: str, help_text: str, samples: list[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def _event_counts() -> dict[str, int]:
    rows = SecurityEvent.objects.values("kind").annotate(n=Count("id")).order_by()
    return {row["kind"]: row["n"] for row in rows}


def _factor_count(kind: str, factor: str) -> int:
    return SecurityEvent.objects.filter(kind=kind, detail__factor=factor).count()


def _client_failures() -> int:
    """The failures core.throttle.OIDC_CLIENT counts for the day (its rows are shared by
    every process, as the events are)."""
    since = clock.now() - throttle.DAY
    return ThrottleFailure.objects.filter(
        throttle__scope=throttle.OIDC_CLIENT.scope, at__gt=since
    ).count()


def _outbox_states() -> dict[str, int] | None:
    """Notices by state, if the outbox model exists (it belongs to the audit app)."""
    try:
        model = apps.get_model("audit", "Outbox")
    except LookupError:
        return None
    field = next(
        (f for f in ("state", "status") if any(x.name == f for x in model._meta.get_fields())),
        None,
    )
    if field is None:
        return None
    rows = model.objects.values(field).annotate(n=Count("pk")).order_by()
    return {str(row[field]): row["n"] for row in rows}


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, behind ``Authorization: Bearer $KEYFOB_METRICS_TOKEN``.

    404 when no token is set (the endpoint is off), 401 for a missing or wrong token.
    """
    if not _authorized(request):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    events = _event_counts()
    out: list[str] = []
    signins = {
        "success": events.get(EventKind.SIGNIN_OK, 0),
        "trusted_browser": events.get(EventKind.SIGNIN_TRUSTED, 0),
        "wrong_password": events.get(EventKind.PASSWORD_WRONG, 0),
        "throttled": _factor_count(EventKind.THROTTLED, "password"),
    }
    out += _family(
        "keyfob_signins_total",
        "counter",
        "Sign-in attempts by outcome (password step and completed sign-ins).",
        [f'keyfob_signins_total{{outcome="{k}"}} {v}' for k, v in signins.items()],
    )
    accepted = SecurityEvent.objects.filter(
        kind=EventKind.SIGNIN_OK, detail__second_factor="code"
    ).count() + events.get(EventKind.TWOFACTOR_ON, 0)
    codes = {
        "accepted": accepted,
        "rejected": events.get(EventKind.CODE_WRONG, 0),
        "reused": events.get(EventKind.CODE_REUSED, 0),
        "throttled": _factor_count(EventKind.THROTTLED, "code"),
        "recovery_accepted": events.get(EventKind.RECOVERY_USED, 0),
        "recovery_rejected": events.get(EventKind.RECOVERY_WRONG, 0),
    }
    out += _family(
        "keyfob_codes_total",
        "counter",
        "Authentication codes by result (accepted: sign-ins with a code and activations).",
        [f'keyfob_codes_total{{result="{k}"}} {v}' for k, v in codes.items()],
    )
    out += _family(
        "keyfob_security_events_total",
        "counter",
        "Security events recorded, by kind.",
        [
            f'keyfob_security_events_total{{kind="{kind}"}} {events.get(kind, 0)}'
            for kind in EventKind.values
        ],
    )
    out += _family(
        "keyfob_oidc_client_failures",
        "gauge",
        "Failed token and device requests of OpenID Connect clients (wrong client "
        "authentication, a code or token the client does not hold) in the last 24 hours.",
        [f"keyfob_oidc_client_failures {_client_failures()}"],
    )
    states = _outbox_states()
    if states is not None:
        out += _family(
            "keyfob_notices",
            "gauge",
            "Notices in the outbox, by state.",
            [f'keyfob_notices{{state="{k}"}} {v}' for k, v in sorted(states.items())],
        )
    out += _family(
        "keyfob_request_duration_seconds",
        "histogram",
        "Time to answer a request, in this process since it started.",
        REQUEST_LATENCY.lines("keyfob_request_duration_seconds"),
    )
    response = HttpResponse(
        "\n".join(out) + "\n", content_type="text/plain; version=0.0.4; charset=utf-8"
    )
    response["Cache-Control"] = "no-store"
    return response
