"""keyfob ssh-unlink LOGIN [--server NAME]: remove a link made by ssh-link (without --server:
an old link for every server, no longer in force)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.api import flows
from keyfob.audit.events import Context
from keyfob.audit.models import Channel


class Command(BaseCommand):
    help = "Unlink a Unix login from its account."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("login")
        parser.add_argument("--server", default="", metavar="NAME")

    def handle(self, *args: Any, **opts: Any) -> None:
        if not flows.unlink(opts["login"], opts["server"], Context(channel=Channel.CLI)):
            where = f" on {opts['server']}" if opts["server"] else " for every server"
            raise CommandError(f"{opts['login']} has no link{where}")
        self.stdout.write(f"{opts['login']} unlinked.")
