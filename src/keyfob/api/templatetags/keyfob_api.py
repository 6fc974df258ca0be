"""``{% load keyfob_api %}{% ssh_logins user %}``: the Security page's SSH section."""

from __future__ import annotations

from typing import Any

from django import template

from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.twofactor.flows import has_2fa

register = template.Library()


@register.inclusion_tag("api/ssh_logins.html")
def ssh_logins(user: User) -> dict[str, Any]:
    """The account's linked Unix logins, each with its last accepted SSH login."""
    rows = flows.logins_of(user)
    last: dict[tuple[str, str], SecurityEvent] = {}
    if rows:
        events = SecurityEvent.objects.filter(
            user=user, channel=Channel.SSH, kind=EventKind.SIGNIN_OK
        ).only("at", "detail", "address")[:200]
        for seen in events:
            key = (str(seen.detail.get("login", "")), str(seen.detail.get("server", "")))
            last.setdefault(key, seen)
    links = []
    for row in rows:
        event: SecurityEvent | None
        if row.server:
            event = last.get((row.login, row.server))
        else:  # a link for every server: its latest login on any server
            event = next((e for (login, _s), e in last.items() if login == row.login), None)
        links.append({"login": row.login, "server": row.server, "last": event})
    return {"links": links, "twofactor_on": has_2fa(user)}
