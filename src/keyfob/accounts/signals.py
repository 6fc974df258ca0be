"""What accounts announce to the apps above them (which it must not import)."""

from django.dispatch import Signal

# Sent with ``user`` inside the transaction that changed the account's password or sign-in
# address: whatever skipped the password until now must stop (twofactor revokes its
# trusted browsers).
credentials_changed = Signal()

# Sent with ``user_id`` and ``signin_ids`` (the sign-in records that just ended: signed out,
# signed out from elsewhere, a password reset, support) inside the transaction that ended
# them: what those sessions let in ends with them (keyfob.oidc revokes the apps' tokens).
signins_ended = Signal()
