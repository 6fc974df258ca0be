"""What audit announces to the apps above it (which it must not import)."""

from django.dispatch import Signal

# Sent by ``keyfob prune-activity``: each receiver deletes what it keeps that is no longer
# needed and returns a line saying what it deleted.
pruning = Signal()
