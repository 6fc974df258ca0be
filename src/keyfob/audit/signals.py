"""What the audit app announces to the apps above it (which it must not import)."""

from django.dispatch import Signal

# Sent by ``keyfob prune-activity`` with ``now``: each receiver deletes what its app keeps
# past its use and returns ``(what, how_many)``, ``what`` naming it for the operator
# ("expired password resets").
pruning = Signal()

# Sent by the outbox sender at each pass (``keyfob send-mail``, the web workers' sender
# thread) with ``limit``: each receiver delivers up to ``limit`` of what its app queued the
# same way (keyfob.oidc: back-channel logouts) and returns ``(what, report)``, ``report``
# a :class:`keyfob.audit.mailer.SendReport`. A receiver that raises is logged, and the
# others still run.
outbox_pass = Signal()
