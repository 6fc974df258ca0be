"""What the provider hears from the layers below."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from keyfob.accounts.signals import signins_ended
from keyfob.audit.mailer import SendReport
from keyfob.audit.signals import outbox_pass, pruning
from keyfob.oidc import backchannel, flows
from keyfob.teams.signals import grant_changed, grant_ended


@receiver(signins_ended, dispatch_uid="keyfob.oidc.signins-ended")
def _signins_ended(sender: object, user_id: int, signin_ids: list[int], **kwargs: Any) -> None:
    """Ending a session ends it everywhere it reached (invariant 8): its apps' tokens,
    and a back-channel logout queued for each app that asked for one."""
    flows.end_signins(user_id, signin_ids)


@receiver(grant_ended, dispatch_uid="keyfob.oidc.grant-ended")
def _grant_ended(sender: object, grant: Any, **kwargs: Any) -> None:
    """A member removed or gone (issue 27): the tokens whose claim listed that account are
    revoked at once, with a back-channel logout to their apps."""
    flows.grant_withdrawn(grant)


@receiver(grant_changed, dispatch_uid="keyfob.oidc.grant-changed")
def _grant_changed(sender: object, grant: Any, **kwargs: Any) -> None:
    """Rights, logins or rule changed: as for an ended grant, the tokens that carried the
    old rights go, and the app's next sign-in carries the new ones (or none, while the new
    rule waits for a stronger proof)."""
    flows.grant_withdrawn(grant)


@receiver(outbox_pass, dispatch_uid="keyfob.oidc.backchannel-logouts")
def _outbox_pass(sender: object, limit: int, **kwargs: Any) -> tuple[str, SendReport]:
    """The outbox sender's pass delivers the back-channel logouts too."""
    return backchannel.WHAT, backchannel.deliver_pending(limit)


@receiver(pruning, dispatch_uid="keyfob.oidc.prune-logouts")
def _pruning(sender: object, now: Any, **kwargs: Any) -> tuple[str, int]:
    return f"{backchannel.WHAT} delivered or given up", backchannel.prune(now)
