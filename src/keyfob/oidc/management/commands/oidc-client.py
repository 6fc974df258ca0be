"""keyfob oidc-client create NAME --redirect-uri URI [...] [--public] [--first-party]
[--require-phishing-resistant] [--device] [--backchannel-logout-uri URI]
[--post-logout-redirect-uri URI] | list | revoke CLIENT_ID

An app the provider runs (control panel, webmail, database admin) signs its users in
through Keyfob once registered here. ``create`` prints the client id, and the secret once
(only its hash is kept); a public client (a command-line tool, a single-page app) has no
secret and must use PKCE. Redirect URIs must match exactly.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from keyfob.oidc import flows
from keyfob.oidc.models import Client


class Command(BaseCommand):
    help = "Register, list and revoke the apps that sign people in through Keyfob."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        create = actions.add_parser("create", help="register an app; print its id and secret")
        create.add_argument("name", help="the app's name, shown to people on the consent page")
        create.add_argument(
            "--redirect-uri", action="append", default=[], help="an exact redirect URI (repeat)"
        )
        create.add_argument("--public", action="store_true", help="no secret (PKCE only)")
        create.add_argument(
            "--first-party", action="store_true", help="the provider's own app: no consent page"
        )
        create.add_argument(
            "--require-phishing-resistant",
            action="store_true",
            help="tokens only for sessions proved by a security key or passkey",
        )
        create.add_argument(
            "--device", action="store_true", help="a device-grant client (RFC 8628), no redirect"
        )
        create.add_argument("--backchannel-logout-uri", default="", help="where logout tokens go")
        create.add_argument(
            "--post-logout-redirect-uri", action="append", default=[], help="after logout (repeat)"
        )
        actions.add_parser("list", help="the apps, never their secret")
        revoke = actions.add_parser("revoke", help="stop an app and revoke its tokens")
        revoke.add_argument("client_id")

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"]
        if action == "create":
            try:
                client, secret = flows.create_client(
                    opts["name"],
                    opts["redirect_uri"],
                    public=opts["public"],
                    first_party=opts["first_party"],
                    require_phishing_resistant=opts["require_phishing_resistant"],
                    device=opts["device"],
                    backchannel_logout_uri=opts["backchannel_logout_uri"],
                    post_logout_redirect_uris=opts["post_logout_redirect_uri"],
                )
            except flows.ClientError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"client_id: {client.client_id}")
            if secret:
                self.stderr.write("client_secret (shown once; only its hash is kept):")
                self.stdout.write(f"client_secret: {secret}")
        elif action == "list":
            rows = list(Client.objects.order_by("name", "pk"))
            if not rows:
                self.stdout.write("No apps.")
            for row in rows:
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
                traits = [row.client_type]
                if row.skip_authorization:
                    traits.append("first-party")
                if row.require_phishing_resistant:
                    traits.append("phishing-resistant")
                if row.authorization_grant_type == Client.GRANT_DEVICE_CODE:
                    traits.append("device")
                self.stdout.write(
                    f"{row.client_id}\t{row.name}\t{state}\t{', '.join(traits)}\t"
                    f"{row.redirect_uris or '-'}"
                )
        else:
            try:
                client = flows.revoke_client(opts["client_id"])
            except flows.ClientError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"App {client.name} revoked; its tokens no longer work.")
