"""Grace reminders: while a grant's grace period runs and its member's account cannot meet
its rule yet (no two-factor authentication, no security key), the member gets at most one
reminder mail a day, and one last mail once the grace period is over (then the rule
applies). Sent from the outbox sender's pass (audit's ``outbox_pass`` signal, as oidc's
back-channel logouts are), so no scheduler is needed.

Each reminder is claimed by one conditional UPDATE of ``Grant.reminded_at`` (two senders
at once: one mail), in the transaction that queues it.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q

from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.mailer import SendReport
from keyfob.audit.models import NoticeKind
from keyfob.core import clock
from keyfob.teams.flows import who
from keyfob.teams.models import Grant, Rule
from keyfob.twofactor.flows import has_2fa
from keyfob.twofactor.models import SecurityKey

WHAT = "team grace reminders"
EVERY = timedelta(days=1)
# A grace period that ended longer ago than this gets no last mail (a server down a week).
LATE = timedelta(days=7)


def account_can_meet(grant: Grant) -> bool:
    """Whether the member's account has what the rule asks a session to prove."""
    if grant.rule == Rule.TWO_FACTOR:
        return has_2fa(grant.member)
    if grant.rule == Rule.KEY:
        return SecurityKey.objects.filter(user=grant.member).exists()
    return True


def _due(now: datetime) -> Q:
    """Grants whose member is owed a reminder at ``now``: one a day while the grace period
    runs, and a last one once it is over."""
    running = Q(grace_until__gt=now) & (
        Q(reminded_at__isnull=True) | Q(reminded_at__lte=now - EVERY)
    )
    over = Q(grace_until__lte=now) & (
        Q(reminded_at__isnull=True) | Q(reminded_at__lt=F("grace_until"))
    )
    return (
        Q(ended_at__isnull=True, grace_until__isnull=False, grace_until__gt=now - LATE)
        & ~Q(rule=Rule.NONE)
        & (running | over)
    )


def send_reminders(limit: int) -> SendReport:
    """Queue up to ``limit`` reminders due; return what was done (``sent``: queued)."""
    now = clock.now()
    report = SendReport()
    due = list(Grant.objects.filter(_due(now)).select_related("owner", "member")[:limit])
    report.due = len(due)
    for grant in due:
        grace_until = grant.grace_until
        assert grace_until is not None
        over = grace_until <= now
        with transaction.atomic():
            claimed = Grant.objects.filter(_due(now), pk=grant.pk).update(reminded_at=now)
            if not claimed:
                continue  # another sender's
            if account_can_meet(grant):
                continue  # nothing to remind of (the session's proof is the member's to make)
            notices.queue(
                grant.member,
                NoticeKind.TEAM_GRACE,
                Context(),
                owner=who(grant.owner),
                rule=str(grant.rule),
                ended=over,
                days_left=0 if over else math.ceil((grace_until - now) / timedelta(days=1)),
            )
            report.sent += 1
    return report
