"""keyfob ssh-link EMAIL LOGIN [--server NAME]: the Unix LOGIN belongs to the account EMAIL.

Without --server the link holds on every server; with it, only on the server whose token
is named NAME (and it wins there over a link for every server).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.audit.events import Context
from keyfob.audit.models import Channel


class Command(BaseCommand):
    help = "Link a Unix login to an account: its SSH logins then ask for the account's code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("login")
        parser.add_argument("--server", default="", metavar="NAME", help="only on this server")

    def handle(self, *args: Any, **opts: Any) -> None:
        email = str(opts["email"]).strip().lower()
        user = User.objects.filter(email=email).first()
        if user is None:
            raise CommandError(f"no account with the e-mail {email}")
        try:
            flows.link(user, opts["login"], opts["server"], Context(channel=Channel.CLI))
        except flows.ApiError as exc:
            raise CommandError(exc.message) from None
        where = f"on {opts['server']}" if opts["server"] else "on every server"
        self.stdout.write(f"{opts['login']} {where} now belongs to {email}.")
