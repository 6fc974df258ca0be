"""/healthz, /readyz and /metrics in process: JSON, no session, the token, the counts."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from tests.conftest import PASSWORD, Enrolled, password_step

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-for-tests"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_json_without_a_session(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert response["Content-Type"] == "application/json"
    assert not response.cookies and Session.objects.count() == 0


def test_a_signed_in_probe_writes_nothing(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    password_step(client)
    before = Session.objects.get().session_data
    for path in ["/healthz", "/readyz"]:
        response = client.get(path)
        assert response.status_code == 200 and not response.cookies
    assert Session.objects.get().session_data == before


def test_metrics_are_off_without_a_token(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.KEYFOB_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, "Bearer"])
def test_metrics_need_the_token(client: Client, settings, header: str | None) -> None:  # type: ignore[no-untyped-def]
    settings.KEYFOB_METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")
    assert b"keyfob_" not in response.content


def metric(text: str, name: str, **labels: str) -> float:
    label_text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(f"{name}{{{label_text}}}" if labels else name) + r" ([0-9.e+]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    assert match, f"{name} {labels} not in metrics"
    return float(match.group(1))


def test_metrics_count_from_the_database(  # type: ignore[no-untyped-def]
    client: Client,
    settings,
    user_with_totp: Enrolled,
    frozen_time: float,
) -> None:
    settings.KEYFOB_METRICS_TOKEN = TOKEN
    # Turning 2FA on checked a code already (the enrolment, through the Security page's flow).
    before = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    accepted_before = metric(before, "keyfob_codes_total", result="accepted")
    password_step(client, password="not the password")
    password_step(client)
    code = user_with_totp.code()
    wrong = "000000" if code != "000000" else "111111"
    assert client.post("/login/code/", {"code": wrong}).status_code == 200
    assert client.post("/login/code/", {"code": code}).status_code == 302
    other = Client()
    password_step(other)
    other.post("/login/code/", {"code": code})  # the same code again: reused

    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert metric(text, "keyfob_signins_total", outcome="success") == 1
    assert metric(text, "keyfob_signins_total", outcome="wrong_password") == 1
    assert metric(text, "keyfob_codes_total", result="accepted") == accepted_before + 1
    assert metric(text, "keyfob_codes_total", result="rejected") == 1
    assert metric(text, "keyfob_codes_total", result="reused") == 1
    assert metric(text, "keyfob_codes_total", result="throttled") == 0
    assert metric(text, "keyfob_security_events_total", kind="signin_ok") == 1
    assert metric(text, "keyfob_request_duration_seconds_count") >= 6
    assert metric(text, "keyfob_request_duration_seconds_bucket", le="+Inf") == metric(
        text, "keyfob_request_duration_seconds_count"
    )
    assert "# TYPE keyfob_request_duration_seconds histogram" in text
    assert user_with_totp.user.email not in text and PASSWORD not in text
