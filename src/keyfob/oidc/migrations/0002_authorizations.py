import django.db.models.deletion
import keyfob.core.clock
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("oidc", "0001_clients"),
        ("accounts", "0009_signins_and_proofs"),
        # The device grant's table is one of the library's later migrations.
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Authorization',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('auth_time', models.DateTimeField()),
                ('amr', models.JSONField(default=list)),
                ('acr', models.CharField(max_length=16)),
                ('token_family', models.UUIDField(blank=True, db_index=True, null=True)),
                ('created_at', models.DateTimeField(default=keyfob.core.clock.now)),
                ('ended_at', models.DateTimeField(blank=True, null=True)),
                ('client', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='authorizations', to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL)),
                ('device_grant', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='keyfob_authorization', to=settings.OAUTH2_PROVIDER_DEVICE_GRANT_MODEL)),
                ('grant', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='keyfob_authorization', to=settings.OAUTH2_PROVIDER_GRANT_MODEL)),
                ('signin', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='accounts.signin')),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='oidc_authorizations', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'indexes': [models.Index(fields=['signin', 'ended_at'], name='oidc_auth_signin')],
            },
        ),
        migrations.CreateModel(
            name='Consent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scopes', models.TextField(default='')),
                ('granted_at', models.DateTimeField(default=keyfob.core.clock.now)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('client', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='consents', to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='oidc_consents', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'consent',
                'constraints': [models.UniqueConstraint(fields=('user', 'client'), name='oidc_consent_once')],
            },
        ),
    ]
