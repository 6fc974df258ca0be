"""Security events. Never a secret, code or password in one: only what happened, and where."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from keyfob import clock


class EventKind(models.TextChoices):
    SIGNIN_OK = "signin_ok", _("Signed in")
    SIGNIN_TRUSTED = "signin_trusted", _("Signed in from a trusted browser")
    PASSWORD_WRONG = "password_wrong", _("Wrong password")
    CODE_WRONG = "code_wrong", _("Wrong authentication code")
    CODE_REUSED = "code_reused", _("Authentication code used a second time")
    THROTTLED = "throttled", _("Attempt refused: too many wrong tries")
    RECOVERY_USED = "recovery_used", _("Recovery code used")
    RECOVERY_WRONG = "recovery_wrong", _("Wrong recovery code")
    RECOVERY_REGENERATED = "recovery_regenerated", _("Recovery codes regenerated")
    TWOFACTOR_ON = "2fa_on", _("Two-factor authentication turned on")
    TWOFACTOR_OFF = "2fa_off", _("Two-factor authentication turned off")
    TRUSTED_ADDED = "trusted_added", _("Browser trusted for 30 days")
    TRUSTED_REVOKED = "trusted_revoked", _("Trusted browser revoked")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    EMAIL_CHANGED = "email_changed", _("E-mail address changed")
    PROFILE_CHANGED = "profile_changed", _("Profile changed")
    SIGNOUT = "signout", _("Signed out")


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    SSH = "ssh", _("SSH")
    API = "api", _("API")
    CLI = "cli", _("Command line")


class SecurityEvent(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="security_events"
    )
    kind = models.CharField(max_length=32, choices=EventKind.choices)
    at = models.DateTimeField(default=clock.now, db_index=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}"
