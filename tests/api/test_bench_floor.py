"""The bench's floor endpoint (bench/floor_urls.py) does what it says: the verify's read
and one durable write of the same rows, and nothing that would consume a code."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from keyfob.audit.models import SecurityEvent
from keyfob.twofactor.models import Authenticator
from tests.api.conftest import Api
from tests.conftest import Enrolled

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def floor_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))


@pytest.mark.django_db(transaction=True)
def test_floor_reads_and_writes_what_a_verify_does(
    floor_urls: None, api: Api, linked: Enrolled
) -> None:
    step = Authenticator.objects.get(user=linked.user).last_step
    events = SecurityEvent.objects.filter(user=linked.user).count()
    with override_settings(ROOT_URLCONF="floor_urls"):
        response = api.client.generic(
            "POST",
            "/bench/floor",
            '{"login": "alice", "code": "000000"}',
            content_type="application/json",
            headers={"Authorization": f"Bearer {api.token}"},
        )
        # Keyfob's own URLs still resolve beside it.
        assert api.client.get("/healthz").status_code == 200
    assert response.status_code == 200
    assert response.json() == {"result": "accepted"}
    # One event more, for this account; the step is untouched, so no code was spent.
    assert SecurityEvent.objects.filter(user=linked.user).count() == events + 1
    assert Authenticator.objects.get(user=linked.user).last_step == step
    latest = SecurityEvent.objects.filter(user=linked.user).latest("id")
    assert (latest.kind, latest.channel) == ("signin_ok", "ssh")
