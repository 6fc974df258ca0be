"""keyfob ssh-ca public-key | rotate | forget-old | krl [--output PATH] | list [--email E]
| revoke SERIAL… | revoke --email E

The SSH certificate authority (issue 26). ``public-key`` prints the lines for sshd's
``TrustedUserCAKeys`` (the key that signs, the next one during a rotation, and a retired one
until its certificates have expired); servers fetch the same list with ``keyfob-ssh
ca-sync``. A rotation is two runs of ``rotate``: the first makes the next key (let servers
fetch it), the second makes it the one that signs.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.models import User
from keyfob.api import sshca
from keyfob.api.models import SshCertificate
from keyfob.audit.events import Context
from keyfob.audit.models import Channel

ROTATED = {
    sshca.Rotation.MADE_FIRST: "Made the first CA key {fp}: it signs from now on.",
    sshca.Rotation.MADE_NEXT: (
        "Made the next CA key {fp}: it is published beside the current one. Let every "
        "server fetch it (keyfob-ssh ca-sync), then run `keyfob ssh-ca rotate` again to make "
        "it the one that signs."
    ),
    sshca.Rotation.PROMOTED: (
        "The CA key {fp} signs from now on; the previous one stays published until the "
        "certificates it signed have expired."
    ),
}


def _serial(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise CommandError(f"{value!r} is not a certificate serial (a number)")
    return int(value)


class Command(BaseCommand):
    help = "The SSH certificate authority: its public keys, rotation, revocations."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        actions.add_parser("public-key", help="the lines for sshd's TrustedUserCAKeys")
        actions.add_parser("rotate", help="make the next key, or make the next key sign")
        actions.add_parser(
            "forget-old", help="stop publishing retired keys now (their certificates stop)"
        )
        krl = actions.add_parser("krl", help="write the revocation list (OpenSSH KRL)")
        krl.add_argument("--output", default="-", metavar="PATH", help="default: stdout")
        listing = actions.add_parser("list", help="the certificates issued, newest first")
        listing.add_argument("--email", default=None)
        revoke = actions.add_parser("revoke", help="revoke certificates (by serial or account)")
        revoke.add_argument("serials", nargs="*", metavar="SERIAL")
        revoke.add_argument("--email", default=None, help="every certificate of the account")

    def _user(self, email: str) -> User:
        user = User.objects.with_email(normal_email(email)).first()
        if user is None:
            raise CommandError(f"no account with the e-mail {email}")
        return user

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"]
        context = Context(channel=Channel.CLI)
        if action == "public-key":
            for key in sshca.published_keys():
                self.stdout.write(key.public_key)
        elif action == "rotate":
            done, made = sshca.rotate(context)
            self.stdout.write(ROTATED[done].format(fp=made.fingerprint))
        elif action == "forget-old":
            count = sshca.unpublish_retired()
            self.stdout.write(f"{count} retired keys are no longer published.")
        elif action == "krl":
            try:
                data = sshca.revocation_list()
            except sshca.KrlError as exc:
                raise CommandError(exc.message) from None
            if opts["output"] == "-":
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                try:
                    with open(opts["output"], "wb") as out:
                        out.write(data)
                except OSError as exc:
                    raise CommandError(f"cannot write {opts['output']}: {exc.strerror}") from None
        elif action == "list":
            rows = SshCertificate.objects.select_related("user")
            if opts["email"] is not None:
                rows = rows.filter(user=self._user(opts["email"]))
            if not rows.exists():
                self.stdout.write("No certificates.")
            for row in rows[:1000]:
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "valid"
                self.stdout.write(
                    f"{row.serial}\t{row.user.email}\t{row.fingerprint}\t"
                    f"until {row.valid_before:%Y-%m-%d %H:%M}\t{state}"
                )
        else:
            if bool(opts["serials"]) == (opts["email"] is not None):
                raise CommandError("give certificate serials, or --email, not both")
            if opts["email"] is not None:
                chosen = list(SshCertificate.objects.filter(user=self._user(opts["email"])))
            else:
                serials = [_serial(value) for value in opts["serials"]]
                chosen = list(SshCertificate.objects.filter(serial__in=serials))
                missing = set(serials) - {row.serial for row in chosen}
                if missing:
                    raise CommandError(f"no certificate with the serial {min(missing)}")
            count = sshca.revoke(chosen, context)
            self.stdout.write(f"{count} certificates revoked.")
