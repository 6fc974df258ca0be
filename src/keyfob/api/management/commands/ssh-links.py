"""keyfob ssh-links [--server NAME]: the login links, and the requests waiting for an
account's answer (the operator's view of every server; a server's token sees its own)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from keyfob.api.flows import REQUEST_LIFETIME
from keyfob.api.models import SshLinkRequest, SshLogin
from keyfob.core import clock


class Command(BaseCommand):
    help = "List the Unix login links (in force, old ones for every server, and requests)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--server",
            default=None,
            metavar="NAME",
            help="only this server's (an empty NAME: the old links for every server)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        links = SshLogin.objects.select_related("user")
        asked = SshLinkRequest.objects.select_related("user").filter(
            created_at__gt=clock.now() - REQUEST_LIFETIME
        )
        if opts["server"] is not None:
            links = links.filter(server=opts["server"])
            asked = asked.filter(server=opts["server"])
        rows = [
            (row.login, row.server or "*", row.user.email, "linked" if row.server else "old")
            for row in links
        ] + [(row.login, row.server, row.user.email, "asked") for row in asked]
        if not rows:
            self.stdout.write("No login links.")
        for login, server, email, state in sorted(rows):
            self.stdout.write(f"{login}\t{server}\t{email}\t{state}")
