"""keyfob ssh-link EMAIL LOGIN --server NAME: the Unix LOGIN on server NAME belongs to the
account EMAIL.

Only the token named NAME reaches the login. There is no link for every server any more:
any server's token could act on such a login (issue 15).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.audit.events import Context
from keyfob.audit.models import Channel


class Command(BaseCommand):
    help = "Link a Unix login to an account: its SSH logins then ask for the account's code."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("login")
        # Not required by argparse, so that its absence gets the flows' own explanation.
        parser.add_argument(
            "--server", default="", metavar="NAME", help="the server token's name (required)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        email = normal_email(str(opts["email"]))
        user = User.objects.with_email(email).first()
        if user is None:
            raise CommandError(f"no account with the e-mail {email}")
        try:
            flows.link(user, opts["login"], opts["server"], Context(channel=Channel.CLI))
        except flows.ApiError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"{opts['login']} on {opts['server']} now belongs to {email}.")
