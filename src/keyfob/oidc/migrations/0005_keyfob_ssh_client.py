"""The device-grant client of ``keyfob-ssh login`` (issue 26): public (a command-line tool
keeps no secret), first-party (the approval page is its consent)."""

from django.db import migrations


def add(apps, schema_editor):  # type: ignore[no-untyped-def]
    Client = apps.get_model("oidc", "Client")
    Client.objects.get_or_create(
        client_id="keyfob-ssh",
        defaults={
            "name": "keyfob-ssh",
            "client_type": "public",
            "authorization_grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_secret": "",
            "skip_authorization": True,
            "algorithm": "RS256",
            "redirect_uris": "",
        },
    )


def remove(apps, schema_editor):  # type: ignore[no-untyped-def]
    apps.get_model("oidc", "Client").objects.filter(client_id="keyfob-ssh").delete()


class Migration(migrations.Migration):
    dependencies = [("oidc", "0004_device_state")]
    operations = [migrations.RunPython(add, remove)]
