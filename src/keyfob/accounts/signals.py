"""What accounts announce to the apps above them (which it must not import)."""

from django.dispatch import Signal

# Sent with ``user`` inside the transaction that changed the account's password or sign-in
# address: whatever skipped the password until now must stop (twofactor revokes its
# trusted browsers).
credentials_changed = Signal()
