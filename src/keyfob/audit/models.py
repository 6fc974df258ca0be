"""Security events. Never a secret, code or password in one: only what happened, and where."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from keyfob.core import clock, compiled


class KindField(models.CharField):  # type: ignore[type-arg]
    """A kind of event or notice: a string checked against its enum in code, not a column's
    choices, so that a new kind needs no migration of its own.

    The choices stay on the field (``get_kind_display``, forms, ``full_clean``), but
    :meth:`deconstruct` leaves them out of migrations, where they only recorded a list the
    database never checked (issue 21: every new kind was a migration). :meth:`pre_save`
    refuses an unknown kind, so ``save()``, ``create()`` and ``bulk_create()`` still cannot
    write one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        # To migrations, a plain CharField: the column is what the database sees, and the
        # migrations do not depend on this class.
        name, _path, args, kwargs = super().deconstruct()
        kwargs.pop("choices", None)
        return name, "django.db.models.CharField", args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        value = super().pre_save(model_instance, add)
        if compiled.is_stand_in(value):
            # A compiled statement's stand-in (core.compiled): its real values are kinds
            # checked by event_row, which builds them.
            return value
        if value not in {str(choice) for choice, _label in self.flatchoices}:
            raise ValueError(f"unknown {self.name} {value!r} for {type(model_instance).__name__}")
        return value


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
    AUTHENTICATOR_ADDED = "auth_added", _("Authenticator app added")
    AUTHENTICATOR_RENAMED = "auth_renamed", _("Authenticator app renamed")
    AUTHENTICATOR_REMOVED = "auth_removed", _("Authenticator app removed")
    KEY_ADDED = "key_added", _("Security key added")
    KEY_RENAMED = "key_renamed", _("Security key renamed")
    KEY_REMOVED = "key_removed", _("Security key removed")
    KEY_WRONG = "key_wrong", _("Security key refused")
    KEY_CLONE = "key_clone", _("Security key refused: it may have been copied")
    STAFF_KEY_INVITE = "staff_key_invite", _("Enrolment code for a first security key issued")
    TRUSTED_ADDED = "trusted_added", _("Browser trusted")
    TRUSTED_REVOKED = "trusted_revoked", _("Trusted browser revoked")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    PASSWORD_RESET = "password_reset", _("Password reset with a code sent by e-mail")
    EMAIL_CHANGED = "email_changed", _("E-mail address changed")
    EMAIL_CODE_SENT = "email_code_sent", _("Code sent to confirm a new e-mail address")
    PROFILE_CHANGED = "profile_changed", _("Profile changed")
    SIGNOUT = "signout", _("Signed out")
    SESSIONS_ENDED = "sessions_ended", _("Other sessions signed out")
    # The support desk (keyfob.support): each step of an identity check, on the customer's side.
    SUPPORT_OPENED = "support_opened", _("Request to support to turn off two-factor authentication")
    SUPPORT_CANCELLED = "support_cancelled", _("Request to support cancelled")
    SUPPORT_CALL = "support_call", _("Support called the phone number in the profile")
    SUPPORT_DOCUMENT = "support_document", _("Support verified an identity document")
    SUPPORT_CODE_SENT = "support_code_sent", _("Support e-mailed a verification code")
    SUPPORT_CODE_OK = "support_code_ok", _("Verification code read back to support")
    SUPPORT_CODE_WRONG = "support_code_wrong", _("Wrong verification code given to support")
    SUPPORT_APPROVED = "support_approved", _("Identity check by support passed")
    SUPPORT_REJECTED = "support_rejected", _("Request to support rejected")
    SUPPORT_DISABLED = (
        "support_disabled",
        _("Support disabled two-factor authentication after an identity check"),
    )
    SUPPORT_EMAIL_CHANGED = (
        "support_email_changed",
        _("Support changed the sign-in address after an identity check"),
    )
    NOTICE_EMAIL_CODE_SENT = (
        "notice_email_code_sent",
        _("Code sent to confirm an address for security notices"),
    )
    NOTICE_EMAIL_CHANGED = "notice_email_changed", _("Address for security notices changed")
    SSH_LINKED = "ssh_linked", _("SSH login linked to this account")
    SSH_UNLINKED = "ssh_unlinked", _("SSH login unlinked from this account")
    SSH_LINK_REQUESTED = "ssh_link_requested", _("A server asked to link an SSH login")
    SSH_LINK_DECLINED = "ssh_link_declined", _("Request to link an SSH login refused")
    # The OpenID Connect provider (keyfob.oidc).
    APP_SIGNIN = "app_signin", _("Signed in to an app")
    APP_ALLOWED = "app_allowed", _("App allowed to sign you in")
    APP_REVOKED = "app_revoked", _("App no longer allowed to sign you in")
    APP_REFUSED = "app_refused", _("App refused: it asked for a stronger sign-in")
    SSH_CERT_ISSUED = "ssh_cert_issued", _("SSH certificate issued")
    SSH_CERT_REVOKED = "ssh_cert_revoked", _("SSH certificate revoked")
    # Teams (keyfob.teams): each is written on both accounts, the owner's and the member's.
    TEAM_INVITED = "team_invited", _("Invitation to act for an account sent")
    TEAM_INVITE_WITHDRAWN = "team_withdrawn", _("Invitation to act for an account withdrawn")
    TEAM_INVITE_DECLINED = "team_declined", _("Invitation to act for an account declined")
    TEAM_JOINED = "team_joined", _("Team member added to an account")
    TEAM_GRANT_CHANGED = "team_changed", _("What a team member may do changed")
    TEAM_REMOVED = "team_removed", _("Team member removed from an account")
    TEAM_LEFT = "team_left", _("Team member left an account")
    TEAM_DEFAULTS = "team_defaults", _("Default rule for new team members changed")


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    SSH = "ssh", _("SSH")
    API = "api", _("API")
    CLI = "cli", _("Command line")


class SecurityEvent(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="security_events"
    )
    kind = KindField(choices=EventKind.choices)
    at = models.DateTimeField(default=clock.now, db_index=True)
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.WEB)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}"


class NoticeKind(models.TextChoices):
    """The e-mail notices; each label is also the notice's subject."""

    TWOFACTOR_ON = "2fa_on", _("Two-factor authentication turned on")
    TWOFACTOR_OFF = "2fa_off", _("Two-factor authentication turned off")
    AUTHENTICATOR_ADDED = "auth_added", _("An authenticator app was added to your account")
    AUTHENTICATOR_RENAMED = "auth_renamed", _("An authenticator app was renamed")
    AUTHENTICATOR_REMOVED = "auth_removed", _("An authenticator app was removed from your account")
    KEY_ADDED = "key_added", _("A security key was added to your account")
    KEY_RENAMED = "key_renamed", _("A security key was renamed")
    KEY_REMOVED = "key_removed", _("A security key was removed from your account")
    KEY_CLONE = "key_clone", _("Your security key may have been copied")
    RECOVERY_USED = "recovery_used", _("Recovery code used")
    RECOVERY_REGENERATED = "recovery_regenerated", _("Recovery codes regenerated")
    WRONG_CODES = "wrong_codes", _("Someone may know your password")
    TRUSTED_BROWSER = "trusted_browser", _("New trusted browser")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    EMAIL_CHANGED = "email_changed", _("E-mail address changed")
    EMAIL_CONFIRM = "email_confirm", _("Confirm your new e-mail address")
    PROFILE_CHANGED = "profile_changed", _("Phone number or account kind changed")
    PASSWORD_RESET_CODE = "password_reset_code", _("Your code to choose a new password")
    PASSWORD_RESET = "password_reset", _("Your password was reset")
    SESSIONS_ENDED = "sessions_ended", _("Sessions of your account were signed out")
    # The support desk (keyfob.support).
    SUPPORT_OPENED = "support_opened", _("Request to turn off two-factor authentication")
    SUPPORT_REJECTED = (
        "support_rejected",
        _("Request to turn off two-factor authentication refused"),
    )
    SUPPORT_CODE = "support_code", _("Your verification code for support")
    # Every later change of a request's state (waiting for documents, approved, cancelled).
    SUPPORT_PROGRESS = "support_progress", _("News of your request to support")
    # "I no longer have access to my e-mail address" (keyfob.support).
    LOST_EMAIL_CODE = "lost_email_code", _("Confirm this address for your request to support")
    LOST_EMAIL_RECEIVED = (
        "lost_email_received",
        _("Your request to change the sign-in address is received"),
    )
    LOST_EMAIL_OPENED = "lost_email_opened", _("Request to change your sign-in address")
    LOST_EMAIL_PROGRESS = (
        "lost_email_progress",
        _("News of your request to change the sign-in address"),
    )
    EMAIL_CHANGED_BY_SUPPORT = (
        "email_changed_support",
        _("Your sign-in address was changed by support"),
    )
    # The second address for security notices (keyfob.accounts).
    NOTICE_EMAIL_CONFIRM = "notice_email_confirm", _("Confirm your address for security notices")
    NOTICE_EMAIL_CHANGED = "notice_email_changed", _("Address for security notices changed")
    SUPPORT_HANDOFF = "support_handoff", _("A support request waits for you")
    SSH_LINK_REQUESTED = (
        "ssh_link_requested",
        _("A server asks to link an SSH login to your account"),
    )
    SSH_LINKED = "ssh_linked", _("An SSH login was linked to your account")
    APP_SIGNIN = "app_signin", _("You signed in to an app")
    SSH_CERT_ISSUED = "ssh_cert_issued", _("An SSH certificate was issued for your account")
    # Teams (keyfob.teams). The invitation carries its code; the others tell both people.
    TEAM_INVITATION = "team_invitation", _("You are invited to act for an account")
    TEAM_INVITED = "team_invited", _("You invited someone to your team")
    TEAM_INVITE_ENDED = "team_invite_ended", _("An invitation to a team ended")
    TEAM_JOINED = "team_joined", _("A team membership began")
    TEAM_GRANT_CHANGED = "team_changed", _("What a team member may do changed")
    TEAM_ENDED = "team_ended", _("A team membership ended")
    TEAM_GRACE = "team_grace", _("A team grant waits for a stronger sign-in")


class OutboxState(models.TextChoices):
    # Read by operators only, like the table itself: no translation.
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Outbox(models.Model):
    """One e-mail notice, written in the transaction of the change it tells about.

    Only the facts are stored (kind, plain parameters, where and when); the message is
    rendered when it is sent, so no message body ever sits in the table. A sender claims a
    row by compare-and-set on ``state``/``claimed_until`` before delivering it. The one
    secret a notice may carry for its e-mail (``params["sealed"]``, encrypted) is dropped
    once it is sent or given up; rows sent or given up are deleted after the retention.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notices",
    )
    to = models.EmailField(max_length=254)
    kind = KindField(choices=NoticeKind.choices)
    params = models.JSONField(default=dict, blank=True)
    # The account's language and time zone when it happened (the account may change or go).
    language = models.CharField(max_length=8, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    state = models.CharField(max_length=8, choices=OutboxState.choices, default=OutboxState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=clock.now)
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The error's class and SMTP code only: never a message body or a server's reply text.
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["user", "kind", "created_at"], name="outbox_user_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind} ({self.state})"
