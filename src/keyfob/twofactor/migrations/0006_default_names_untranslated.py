# Events and notices used to record an unnamed app's or key's default name translated, in
# the language of the request that made the change. They now record it untranslated (the
# English text, a message id) and each reader sees it in their own language. English rows
# already hold that text; French ones are rewritten to it. A French default is told from a
# name the holder typed by the account: if one of its apps or keys is named so today, the
# row is left as it is.

from django.db import migrations

NEUTRAL = {
    "Application d’authentification": "Authenticator app",
    "Clé de sécurité": "Security key",
}
# The kinds (events and notices share these values) whose "name"/"old" is an app's or a
# key's; "authenticator" (which one proved a sign-in) is an app's or a key's in any event.
KINDS = [
    "2fa_on",
    "auth_added",
    "auth_renamed",
    "auth_removed",
    "key_added",
    "key_renamed",
    "key_removed",
    "key_clone",
]


def forwards(apps, schema_editor):
    SecurityEvent = apps.get_model("audit", "SecurityEvent")
    Outbox = apps.get_model("audit", "Outbox")
    Authenticator = apps.get_model("twofactor", "Authenticator")
    SecurityKey = apps.get_model("twofactor", "SecurityKey")

    def typed(user_id, name):
        return (
            Authenticator.objects.filter(user_id=user_id, name=name).exists()
            or SecurityKey.objects.filter(user_id=user_id, name=name).exists()
        )

    def rewrite(rows, field, attribute):
        for french, neutral in NEUTRAL.items():
            for row in rows.filter(**{f"{attribute}__{field}": french}).iterator():
                if typed(row.user_id, french):
                    continue
                values = getattr(row, attribute)
                values[field] = neutral
                row.save(update_fields=[attribute])

    for field in ("name", "old"):
        rewrite(SecurityEvent.objects.filter(kind__in=KINDS), field, "detail")
        rewrite(Outbox.objects.filter(kind__in=KINDS), field, "params")
    rewrite(SecurityEvent.objects.all(), "authenticator", "detail")


class Migration(migrations.Migration):
    dependencies = [
        ("twofactor", "0005_challenge_address"),
        ("audit", "0008_security_keys"),
    ]

    # Backwards: nothing to undo; the English text reads the same to the code before.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
