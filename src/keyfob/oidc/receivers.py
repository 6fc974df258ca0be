"""What the provider hears from the layers below."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from keyfob.accounts.signals import signins_ended
from keyfob.audit.mailer import SendReport
from keyfob.audit.signals import outbox_pass, pruning
from keyfob.oidc import backchannel, flows


@receiver(signins_ended, dispatch_uid="keyfob.oidc.signins-ended")
def _signins_ended(sender: object, user_id: int, signin_ids: list[int], **kwargs: Any) -> None:
    """Ending a session ends it everywhere it reached (invariant 8): its apps' tokens,
    and a back-channel logout queued for each app that asked for one."""
    flows.end_signins(user_id, signin_ids)


@receiver(outbox_pass, dispatch_uid="keyfob.oidc.backchannel-logouts")
def _outbox_pass(sender: object, limit: int, **kwargs: Any) -> tuple[str, SendReport]:
    """The outbox sender's pass delivers the back-channel logouts too."""
    return backchannel.WHAT, backchannel.deliver_pending(limit)


@receiver(pruning, dispatch_uid="keyfob.oidc.prune-logouts")
def _pruning(sender: object, now: Any, **kwargs: Any) -> tuple[str, int]:
    return f"{backchannel.WHAT} delivered or given up", backchannel.prune(now)
