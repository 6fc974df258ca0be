"""keyfob send-mail [--loop] [--interval S] [--limit N]: deliver the queued e-mail notices,
and what the apps above queue the same way (back-channel logouts)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.audit import mailer


class Command(BaseCommand):
    help = (
        "Send the e-mail notices that are due, once (the default) or every few seconds "
        "until stopped (--loop), and delete those sent or failed longer ago than "
        "KEYFOB_OUTBOX_RETENTION_DAYS. Without KEYFOB_SMTP_URL they are printed here. "
        "Back-channel logouts owed to apps are delivered by the same passes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep sending until stopped")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="seconds between passes with --loop (default: KEYFOB_MAIL_INTERVAL_SECONDS)",
        )
        parser.add_argument("--limit", type=int, default=100, help="notices per pass")

    def handle(self, *args: Any, **opts: Any) -> None:
        limit = max(1, opts["limit"])
        if opts["loop"]:
            self._loop(opts["interval"], limit)
            return
        # The other outboxes first: a bad KEYFOB_SMTP_URL must not hold them back.
        for what, other in mailer.send_others(limit):
            self.stdout.write(
                f"{what}: delivered {other.sent}, to retry {other.retrying}, "
                f"given up {other.failed}, taken by another sender {other.skipped}"
            )
        try:
            report = mailer.send_pending(limit, stream=self.stdout)  # type: ignore[arg-type]
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        pruned = mailer.prune_outbox()
        self.stdout.write(
            f"sent {report.sent}, to retry {report.retrying}, failed {report.failed}, "
            f"taken by another sender {report.skipped}; deleted {pruned} past the retention"
        )

    def _loop(self, interval: float | None, limit: int) -> None:
        if interval is not None and interval <= 0:
            raise CommandError("--interval must be more than 0")
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        self.stdout.write("Sending e-mail notices (Ctrl-C stops)")
        try:
            mailer.run_loop(stop, interval, limit=limit, stream=self.stdout)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            stop.set()
