"""Recording security events; a Context says where a request came from."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from keyfob.audit.models import Channel, EventKind, SecurityEvent


@dataclass(frozen=True)
class Context:
    """Where an action came from: the channel, the client address and the browser."""

    channel: str = Channel.WEB
    address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> Context:
        return cls(
            channel=Channel.WEB,
            address=client_address(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )


def client_address(request: HttpRequest) -> str | None:
    """The peer's address, validated (a malformed REMOTE_ADDR is recorded as unknown)."""
    raw = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def record(user: Any, kind: EventKind, context: Context, **detail: Any) -> SecurityEvent:
    """Write one event; call inside the transaction of the change it records."""
    return SecurityEvent.objects.create(
        user=user,
        kind=kind,
        channel=context.channel,
        address=context.address,
        user_agent=context.user_agent,
        detail=detail,
    )
