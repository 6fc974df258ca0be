"""The API's own middleware stack (site.middleware.ApiMiddleware): an /api/ answer keeps what
the portal's stack gave it (length, request id, headers, the host check) without the
portal's sessions, language negotiation or CSRF."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob.audit.models import SecurityEvent
from tests.api.conftest import Api
from tests.conftest import Enrolled


@pytest.mark.django_db
def test_an_api_answer_has_its_length_and_the_portals_headers_and_no_cookie(
    api: Api, linked: Enrolled
) -> None:
    response = api.post("ssh/verify", {"login": "alice", "code": linked.code()})
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(response.content))  # not chunked
    assert response["Cache-Control"] == "no-store"
    assert response["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert len(response["X-Request-ID"]) == 32
    assert not response.cookies


@pytest.mark.django_db
def test_an_unknown_host_is_refused_on_the_api_too(api: Api, linked: Enrolled) -> None:
    response = api.post("ssh/verify", {"login": "alice", "code": "000000"}, Host="evil.example")
    assert response.status_code == 400
    assert not SecurityEvent.objects.filter(kind="code_wrong").exists()


@pytest.mark.django_db
def test_an_unknown_api_path_is_404(api: Api) -> None:
    assert api.client.get("/api/v1/nothing").status_code == 404


@pytest.mark.django_db
def test_a_page_shown_in_french_leaves_no_french_in_an_ssh_event(
    client: Client, api: Api, linked: Enrolled
) -> None:
    # The worker's last page was French; the SSH server sends no language.
    assert client.get("/login/", HTTP_ACCEPT_LANGUAGE="fr").status_code == 200
    assert api.verify("alice", linked.code()) == {"result": "accepted"}
    event = SecurityEvent.objects.filter(kind="signin_ok").latest("id")
    assert event.detail["authenticator"] == "Authenticator app"
