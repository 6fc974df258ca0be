"""Fixtures for the API tests: server tokens, an account with TOTP, a linked Unix login."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from keyfob.api import flows
from keyfob.api.models import ServerToken
from keyfob.audit.events import Context
from keyfob.audit.models import Channel
from tests.conftest import Enrolled


@dataclass
class Api:
    """A Django test client speaking JSON to /api/v1/ with a server token."""

    client: Client
    token: str
    server: ServerToken

    def post(self, path: str, body: Any, **headers: str) -> Any:
        raw = body if isinstance(body, bytes | str) else json.dumps(body)
        return self.client.generic(
            "POST",
            f"/api/v1/{path}",
            raw,
            content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}", **headers},
        )

    def verify(self, login: str, code: str, **extra: Any) -> dict[str, Any]:
        response = self.post("ssh/verify", {"login": login, "code": code, **extra})
        assert response.status_code == 200, response.content
        return dict(response.json())


@pytest.fixture
def api(db: None, client: Client) -> Api:
    row, token = flows.create_token("web1")
    return Api(client, token, row)


@pytest.fixture
def manager(db: None, client: Client) -> Api:
    row, token = flows.create_token("provisioning", manage_links=True)
    return Api(client, token, row)


@pytest.fixture
def linked(user_with_totp: Enrolled) -> Enrolled:
    """alice@example.com with TOTP, owning the Unix login "alice" on server web1."""
    flows.link(user_with_totp.user, "alice", "web1", Context(channel=Channel.CLI))
    return user_with_totp
