"""What the audit app announces to the apps above it (which it must not import)."""

from django.dispatch import Signal

# Sent by ``keyfob prune-activity`` with ``now``: each receiver deletes what its app keeps
# past its use and returns ``(what, how_many)``, ``what`` naming it for the operator
# ("expired password resets").
pruning = Signal()
