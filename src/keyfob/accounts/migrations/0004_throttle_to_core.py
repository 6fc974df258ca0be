# The throttle's models now belong to core (core 0001); their tables stay, untouched.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_throttle_last_failure"),
        ("core", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name="ThrottleFailure"),
                migrations.DeleteModel(name="Throttle"),
            ],
        ),
    ]
