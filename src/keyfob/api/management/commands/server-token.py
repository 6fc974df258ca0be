"""keyfob server-token create NAME [--manage-links] | list | revoke NAME

A token is printed once, by ``create``; only its hash is kept. Put it in the file the SSH
server's PAM module reads (``token_file=``, mode 0600, owned by root).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.api import flows
from keyfob.api.models import ServerToken


class Command(BaseCommand):
    help = "Make, list and revoke the tokens SSH servers use to reach the API."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        create = actions.add_parser("create", help="make a token and print it (once)")
        create.add_argument("name", help="the server's name, shown in the activity (ssh:NAME)")
        create.add_argument(
            "--manage-links",
            action="store_true",
            help="also allow /api/v1/ssh/logins (the provider's provisioning)",
        )
        actions.add_parser("list", help="the tokens, never their value")
        revoke = actions.add_parser("revoke", help="stop a token working at once")
        revoke.add_argument("name")

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"]
        if action == "create":
            try:
                row, token = flows.create_token(opts["name"], manage_links=opts["manage_links"])
            except flows.ApiError as exc:
                raise CommandError(exc.message) from None
            self.stderr.write(
                f"Token for {row.name} (shown once; store it in the server's token file):"
            )
            self.stdout.write(token)
        elif action == "list":
            rows = list(ServerToken.objects.all())
            if not rows:
                self.stdout.write("No server tokens.")
            for row in rows:
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
                used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
                rights = "verify, manage-links" if row.can_manage_links else "verify"
                self.stdout.write(
                    f"{row.name}\t{state}\tcreated {row.created_at:%Y-%m-%d %H:%M}\t"
                    f"last used {used}\t{rights}"
                )
        else:
            if not flows.revoke_token(opts["name"]):
                raise CommandError(f"no active token named {opts['name']!r}")
            self.stdout.write(f"Token {opts['name']} revoked.")
