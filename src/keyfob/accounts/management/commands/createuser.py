"""keyfob createuser EMAIL [--password-stdin] [--staff] [--phone +33…] [--kind …] [--name …]"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email
from django.db import transaction

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.models import AccountKind, User


class Command(BaseCommand):
    help = "Create a portal account (a customer, or support staff with --staff)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )
        parser.add_argument("--staff", action="store_true", help="support staff")
        parser.add_argument("--phone", default="", help="E.164, e.g. +33123456789")
        parser.add_argument(
            "--kind", default=AccountKind.INDIVIDUAL, choices=list(AccountKind.values)
        )
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **opts: Any) -> None:
        email = normal_email(str(opts["email"]))
        try:
            validate_email(email)
        except ValidationError as exc:
            raise CommandError(f"not a valid e-mail address: {email!r}") from exc
        if User.objects.with_email(email).exists():
            raise CommandError(f"an account with the e-mail {email} already exists")
        if opts["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("the two passwords differ")
        user = User(
            email=email,
            display_name=opts["name"],
            phone=opts["phone"],
            kind=opts["kind"],
            is_staff=opts["staff"],
        )
        try:
            validate_password(password, user)
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        user.set_password(password)
        with transaction.atomic():
            user.save()
        self.stdout.write(f"created {'staff ' if user.is_staff else ''}account {email}")
