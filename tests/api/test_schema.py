"""schemathesis against /api/v1/openapi.json: no 500 on any generated input, and every
response conforms to the document (status, content type, body schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

# Django's own WSGI handler, not keyfob.site.wsgi: importing that one sets the process's
# umask to 077 (for gunicorn), which would leak into every later test of this run.
application = get_wsgi_application()

schemathesis = pytest.importorskip("schemathesis")

from schemathesis.specs.openapi.checks import negative_data_rejection  # noqa: E402

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def auth(manager) -> Iterator[dict[str, str]]:  # type: ignore[no-untyped-def]
    # Like Django's test client: the WSGI handler must not close the test's connection at
    # the end of each request (the test runs in one transaction).
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {manager.token}"}
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case, auth, linked) -> None:  # type: ignore[no-untyped-def]
    # Every check but negative_data_rejection: unknown query parameters are ignored, as
    # HTTP APIs do, and the token header is ours, added to cases generated without it.
    case.call_and_validate(headers=auth, excluded_checks=[negative_data_rejection])
