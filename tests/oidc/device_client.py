"""A device-flow client (RFC 8628) as a command-line tool runs it, until issue 26's
``keyfob-ssh login`` exists: POST client_id to the device authorization endpoint, then poll
the token endpoint with the device code. It speaks form-encoded HTTP and reads JSON, through
Django's test client or over real HTTP (urllib) to a served portal."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
FORM = "application/x-www-form-urlencoded"


@dataclass
class Answer:
    status: int
    body: dict[str, Any]

    @property
    def error(self) -> str | None:
        value = self.body.get("error")
        return value if isinstance(value, str) else None


class Transport:
    def post(self, path: str, data: dict[str, str]) -> Answer:
        raise NotImplementedError


class DjangoTransport(Transport):
    """Through ``django.test.Client`` (its own cookies: none, as a tool has)."""

    def __init__(self, client: Any, remote_addr: str = "198.51.100.7") -> None:
        self.client = client
        self.remote_addr = remote_addr

    def post(self, path: str, data: dict[str, str]) -> Answer:
        response = self.client.post(
            path, urlencode(data), content_type=FORM, REMOTE_ADDR=self.remote_addr
        )
        return Answer(response.status_code, _json(response.content))


class HttpTransport(Transport):
    """Over real HTTP to ``base`` (a served portal)."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def post(self, path: str, data: dict[str, str]) -> Answer:
        request = urllib.request.Request(  # noqa: S310 (http only, the test portal)
            self.base + path,
            data=urlencode(data).encode(),
            headers={"Content-Type": FORM, "Accept": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return Answer(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()))


def _json(content: bytes) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:
        return {"_not_json": content[:200].decode(errors="replace")}
    return value if isinstance(value, dict) else {"_not_object": value}


@dataclass
class DeviceClient:
    transport: Transport
    client_id: str
    scope: str = ""
    started: dict[str, Any] = field(default_factory=dict)

    def start(self, **extra: str) -> Answer:
        data = {"client_id": self.client_id, **extra}
        if self.scope:
            data["scope"] = self.scope
        answer = self.transport.post("/oidc/device/authorize/", data)
        if answer.status == 200:
            self.started = answer.body
        return answer

    def poll(self, device_code: str | None = None) -> Answer:
        return self.transport.post(
            "/oidc/token/",
            {
                "grant_type": DEVICE_GRANT,
                "client_id": self.client_id,
                "device_code": device_code or self.started["device_code"],
            },
        )
