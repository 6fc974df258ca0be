"""What teams hear from the layers below."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from keyfob.audit.mailer import SendReport
from keyfob.audit.signals import outbox_pass
from keyfob.teams import reminders


@receiver(outbox_pass, dispatch_uid="keyfob.teams.grace-reminders")
def _outbox_pass(sender: object, limit: int, **kwargs: Any) -> tuple[str, SendReport]:
    """The outbox sender's pass queues the grace reminders due (sent by a later pass)."""
    return reminders.WHAT, reminders.send_reminders(limit)
