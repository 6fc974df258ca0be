# The throttle's models move here from accounts. Their tables stay as they are: this only
# tells Django's migration state that core owns them now (accounts 0004 lets them go).

import django.db.models.deletion
from django.db import migrations, models

import keyfob.core.clock


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0003_throttle_last_failure"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Throttle",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("scope", models.CharField(max_length=32)),
                        ("key", models.CharField(max_length=128)),
                        ("consecutive", models.PositiveIntegerField(default=0)),
                        ("locked_until", models.DateTimeField(blank=True, null=True)),
                        ("last_failure_at", models.DateTimeField(blank=True, null=True)),
                        ("updated", models.DateTimeField(default=keyfob.core.clock.now)),
                    ],
                    options={
                        "db_table": "accounts_throttle",
                        "constraints": [models.UniqueConstraint(fields=("scope", "key"), name="throttle_scope_key")],
                    },
                ),
                migrations.CreateModel(
                    name="ThrottleFailure",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("at", models.DateTimeField(db_index=True, default=keyfob.core.clock.now)),
                        ("throttle", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="failures", to="core.throttle")),
                    ],
                    options={
                        "db_table": "accounts_throttlefailure",
                    },
                ),
            ],
        ),
    ]
