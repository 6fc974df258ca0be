"""When a grant gives what it grants (DESIGN.md invariant 10): the one place that answers,
for every door (OpenID Connect claims, SSH principals and certificates, the member's page).

A grant counts in a session when the session's live proofs meet its rule — or while its
grace period runs. Nothing is cached: meeting the rule later (turning 2FA on, signing in
with a key) makes it count at once, and a proof that dies (a key removed) takes it away.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from keyfob.accounts import proofs
from keyfob.accounts.models import User
from keyfob.core import clock
from keyfob.teams.models import Grant, Rule

# What each rule waits for, in the member's words (the page shows it with the way to comply).
WAITS_FOR = {
    Rule.TWO_FACTOR: "two-factor authentication",
    Rule.KEY: "a security key",
}


def met(rule: str, factors: Iterable[str]) -> bool:
    """Whether a session that proved ``factors`` (live proofs' factors) meets ``rule``."""
    proved = set(factors)
    if rule == Rule.NONE:
        return True
    if rule == Rule.TWO_FACTOR:
        return bool(proved & proofs.SECOND_FACTORS)
    if rule == Rule.KEY:
        return bool(proved & proofs.KEYS)
    return False  # an unknown rule gives nothing


def in_grace(grant: Grant, now: datetime | None = None) -> bool:
    return grant.grace_until is not None and (now or clock.now()) < grant.grace_until


def counts(grant: Grant, factors: Iterable[str], now: datetime | None = None) -> bool:
    """Whether ``grant`` gives its rights in a session that proved ``factors``."""
    if grant.ended_at is not None:
        return False
    return in_grace(grant, now) or met(grant.rule, factors)


def live_grants(member: User) -> list[Grant]:
    """The member's grants not ended, with their owners."""
    return list(Grant.objects.filter(member=member, ended_at__isnull=True).select_related("owner"))


def split(member: User, factors: Iterable[str]) -> tuple[list[Grant], list[Grant]]:
    """The member's live grants that count in a session that proved ``factors``, and those
    that wait for a stronger proof."""
    proved = set(factors)
    now = clock.now()
    counting: list[Grant] = []
    waiting: list[Grant] = []
    for grant in live_grants(member):
        (counting if counts(grant, proved, now) else waiting).append(grant)
    return counting, waiting
