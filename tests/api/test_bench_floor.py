"""The bench's floor endpoint (bench/floor_urls.py) is the fixed minimum it says it is: one
read of a row by its key and one durable write, in SQL fixed in the bench, importing nothing
of Keyfob's apps, so it cannot move with the code it measures (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from keyfob.audit.models import SecurityEvent
from keyfob.twofactor.models import Authenticator
from tests.api.conftest import Api
from tests.conftest import Enrolled

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def floor_urls(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(BENCH))
    import floor_urls

    return floor_urls


def test_the_floor_imports_nothing_of_keyfobs_apps(floor_urls: Any) -> None:
    source = (BENCH / "floor_urls.py").read_text()
    assert not re.search(r"^\s*(from|import) keyfob", source, re.MULTILINE)


@pytest.mark.django_db(transaction=True)
def test_the_floor_is_one_read_and_one_durable_write(
    floor_urls: Any, api: Api, linked: Enrolled
) -> None:
    step = Authenticator.objects.get(user=linked.user).last_step
    events = SecurityEvent.objects.count()

    def post() -> Any:
        return api.client.generic(
            "POST",
            "/api/bench/floor",
            '{"login": "alice", "code": "000000"}',
            content_type="application/json",
        )

    with override_settings(ROOT_URLCONF="floor_urls"):
        assert post().status_code == 200  # the first one makes the floor's tables
        statements: list[str] = []

        def record(execute: Any, sql: str, *args: Any) -> Any:
            statements.append(sql)
            return execute(sql, *args)

        with connection.execute_wrapper(record):
            response = post()
        # Keyfob's own URLs still resolve beside it.
        assert api.client.get("/healthz").status_code == 200
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    # The read, then the insert in its own transaction (SQLite's BEGIN IMMEDIATE aside).
    assert [s for s in statements if not s.startswith("BEGIN")] == [
        floor_urls.READ,
        floor_urls.WRITE,
    ]
    with connection.cursor() as cursor:  # committed: another connection's view would do
        cursor.execute("SELECT count(*) FROM bench_floor_write")
        assert cursor.fetchone()[0] == 2
    # Nothing of Keyfob's changed: no code spent, no event.
    assert Authenticator.objects.get(user=linked.user).last_step == step
    assert SecurityEvent.objects.count() == events
