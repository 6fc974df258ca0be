"""keyfob prune-activity: delete security events older than the retention (default 365 days),
throttle rows quiet for a day, expired sessions, and what the apps above prune on the
``pruning`` signal (the records of ended sessions)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils.module_loading import import_string

from keyfob.audit.app_settings import app_settings
from keyfob.audit.models import SecurityEvent
from keyfob.audit.signals import pruning
from keyfob.core import clock, throttle


class Command(BaseCommand):
    help = "Delete security events older than KEYFOB_ACTIVITY_RETENTION_DAYS (default 365)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="override the setting")

    def handle(self, *args: Any, **opts: Any) -> None:
        days = opts["days"]
        if days is None:
            days = app_settings.activity_retention_days
        if days < 1:
            self.stderr.write("the retention must be at least one day")
            raise SystemExit(2)
        cutoff = clock.now() - timedelta(days=days)
        deleted, _ = SecurityEvent.objects.filter(at__lt=cutoff).delete()
        self.stdout.write(f"deleted {deleted} events older than {days} days")
        idle = throttle.prune_idle()
        self.stdout.write(f"deleted {idle} throttle rows quiet for a day")
        # Sessions a visitor left (a passkey challenge, a sign-in never finished): Django
        # keeps each row until something deletes it.
        import_string(f"{settings.SESSION_ENGINE}.SessionStore").clear_expired()
        self.stdout.write("deleted expired sessions")
        # What the apps above audit keep (accounts: the records of ended sessions).
        for _receiver, said in pruning.send(sender=Command):
            self.stdout.write(str(said))
