"""What teams announce to the doors above them (oidc, api), which it must not import."""

from django.dispatch import Signal

# Sent with ``grant`` inside the transaction that ended it (the owner removed the member, or
# the member left): what the grant gave must stop at once — the member's tokens that could
# carry it are revoked with a back-channel logout (oidc), the next SSH login refused (api).
grant_ended = Signal()

# Sent with ``grant`` inside the transaction that changed its rights, logins or rule.
grant_changed = Signal()
