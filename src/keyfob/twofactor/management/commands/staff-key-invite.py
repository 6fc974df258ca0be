"""keyfob staff-key-invite EMAIL: print a one-time enrolment code for a staff member's first
security key (an hour; stored hashed, shown only here)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.audit.events import Context
from keyfob.audit.models import Channel
from keyfob.twofactor import flows


class Command(BaseCommand):
    help = (
        "Print a one-time enrolment code for a staff member's first security key. Hand it "
        "over in person or read it out on a call to a number you know: never by e-mail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            user, code, expires = flows.issue_staff_key_invite(
                opts["email"], Context(channel=Channel.CLI)
            )
        except flows.InviteRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Enrolment code for {user.email}: {code}\n"
            f"It adds one first security key, once, until {expires:%Y-%m-%d %H:%M} UTC. "
            "Hand it over in person or on a call to a number you know (never by e-mail); "
            "it is not shown again. A new code replaces this one."
        )
