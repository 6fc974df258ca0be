"""What the provider hears from the layers below."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from keyfob.accounts.signals import signins_ended
from keyfob.oidc import flows


@receiver(signins_ended, dispatch_uid="keyfob.oidc.signins-ended")
def _signins_ended(sender: object, user_id: int, signin_ids: list[int], **kwargs: Any) -> None:
    """Ending a session ends it everywhere it reached (invariant 8): its apps' tokens."""
    flows.end_signins(user_id, signin_ids)
