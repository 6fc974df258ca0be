"""Store every address in Keyfob's one normal form (issue 22): see keyfob.accounts.addresses.

Accounts whose addresses are one address in that form stop the migration, naming them,
with nothing changed: which account owns the mailbox is for the operator to decide."""

from django.db import migrations

from keyfob.accounts.addresses import normalise_stored


def forwards(apps, schema_editor):
    normalise_stored(apps.get_model("accounts", "User"), apps.get_model("accounts", "EmailChange"))


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0006_password_reset_language_time_zone"),
    ]

    operations = [
        # Nothing to undo: the normal form is a valid address, and lower-cased ASCII is how
        # Keyfob always stored it.
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
