"""Recording security events; a Context says where a request came from."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from keyfob.audit.app_settings import app_settings
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.core import clock


@dataclass(frozen=True)
class Context:
    """Where an action came from: the channel, the client address and the browser.

    ``reported_address`` is an address someone else vouches for, not one Keyfob saw: the
    SSH client's, as the SSH server says. It is recorded beside ``address`` (the server's
    own), never instead of it, since a server can write anything there.
    """

    channel: str = Channel.WEB
    address: str | None = None
    user_agent: str = ""
    reported_address: str | None = None

    @classmethod
    def from_request(cls, request: HttpRequest) -> Context:
        return cls(
            channel=Channel.WEB,
            address=client_address(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )


def client_address(request: HttpRequest) -> str | None:
    """The client's address, or None when it cannot be read.

    REMOTE_ADDR is the peer. Only when the peer is one of ``KEYFOB_TRUSTED_PROXIES``
    (addresses or CIDRs) is X-Forwarded-For read: from its right end, the first address
    that is not itself a trusted proxy (further left, a client could have written
    anything). A malformed header is ignored, and the peer's address is used.
    """

    def parse(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        try:
            return ipaddress.ip_address(raw.strip())
        except ValueError:
            return None

    peer = parse(request.META.get("REMOTE_ADDR", ""))
    if peer is None:
        return None
    # site/settings.py refused a bad entry at start-up.
    proxies = [ipaddress.ip_network(item, strict=False) for item in app_settings.trusted_proxies]

    def trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address.version == net.version and address in net for net in proxies)

    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if not proxies or not trusted(peer) or not header:
        return str(peer)
    hops = [parse(item) for item in header.split(",")]
    if any(hop is None for hop in hops):
        return str(peer)
    chain = [hop for hop in hops if hop is not None]
    for hop in reversed(chain):
        if not trusted(hop):
            return str(hop)
    # Every hop is a proxy of ours: the left-most is as far as anyone can tell.
    return str(chain[0])


def event_row(user: Any, kind: EventKind, context: Context, **detail: Any) -> dict[str, Any]:
    """The columns of the event :func:`record` writes (for a flow that writes it itself, in
    a statement built before its transaction)."""
    if context.reported_address is not None:
        detail = {**detail, "reported_address": context.reported_address}
    return {
        "user_id": user.pk,
        # str(): a choices member is an Enum, which a driver may write by its name. EventKind()
        # refuses an unknown kind here too, for the statements compiled from these columns.
        "kind": str(EventKind(kind)),
        "at": clock.now(),
        "channel": str(context.channel),
        "address": context.address,
        "user_agent": context.user_agent,
        "detail": detail,
    }


def record(user: Any, kind: EventKind, context: Context, **detail: Any) -> None:
    """Write one event; call inside the transaction of the change it records. Every
    security event is written here, or from :func:`event_row`'s columns."""
    SecurityEvent.objects.create(**event_row(user, kind, context, **detail))
