"""Issue 15: a link for every server (``server`` = "") is in force nowhere any more.

Each such link becomes a link for each server its login was used on, as the account's
security activity shows it (an accepted SSH login on the SSH channel names the login and
the server): the account's own logins through that server are the evidence that it uses
the server. A server where the login is already another account's keeps that link (it
was the one in force there). A link that became links for servers is removed; one never
used in the kept activity stays, in force nowhere, for the provider to see (the Security
page and GET /api/v1/ssh/logins?server= show it) and to link on the right servers.
"""

from typing import Any

from django.db import migrations

SERVER_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def per_server(apps: Any, schema_editor: Any) -> None:
    SshLogin = apps.get_model("api", "SshLogin")
    SecurityEvent = apps.get_model("audit", "SecurityEvent")
    for old in SshLogin.objects.filter(server=""):
        events = SecurityEvent.objects.filter(
            user_id=old.user_id, channel="ssh", kind="signin_ok"
        ).only("detail")
        servers = set()
        for event in events.iterator():
            detail = event.detail if isinstance(event.detail, dict) else {}
            server = detail.get("server")
            if (
                detail.get("login") == old.login
                and isinstance(server, str)
                and 0 < len(server) <= 64
                and set(server) <= SERVER_CHARS
            ):
                servers.add(server)
        for server in sorted(servers):
            if not SshLogin.objects.filter(login=old.login, server=server).exists():
                SshLogin.objects.create(
                    login=old.login, server=server, user_id=old.user_id, created_at=old.created_at
                )
        # In force where it was used: the old row has done its work. (Where the login is
        # another account's on every server it was used on, it stays, in force nowhere.)
        if SshLogin.objects.filter(
            login=old.login, server__in=servers, user_id=old.user_id
        ).exists():
            old.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_initial"),
        ("audit", "0005_email_confirmation"),
    ]

    operations = [migrations.RunPython(per_server, migrations.RunPython.noop)]
