"""People acting for a customer's account (issue 27): an owner grants a member rights on
the account and some of its SSH logins, and each grant carries its own two-factor rule.

- :class:`Grant`: one member's rights on one owner's account, with its :class:`Rule` and an
  optional grace period; ended (``ended_at``) when the owner removes the member or the
  member leaves — never deleted, so both activities keep what it was.
- :class:`Invitation`: the mail the owner sends to an address, with a code (7 days, single
  use, only the address it was sent to can use it; core.mailedcodes' life cycle).
- :class:`TeamSettings`: the owner's default rule and grace period for new grants.

SSH logins are named by (login, server) pairs: the ``api`` app, a layer above, owns the
links and checks that a granted login is one of the owner's.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from keyfob.core import clock


class Rule(models.TextChoices):
    """What the member's current session must have proved for the grant to give anything."""

    NONE = "none", _("No extra rule")
    TWO_FACTOR = "2fa", _("Two-factor authentication required")
    KEY = "key", _("Security key or passkey required")


class TeamSettings(models.Model):
    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_settings"
    )
    default_rule = models.CharField(max_length=8, choices=Rule.choices, default=Rule.TWO_FACTOR)
    grace_days = models.PositiveSmallIntegerField(default=0)


class Grant(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants_given"
    )
    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants_held"
    )
    rights = models.JSONField(default=list)  # names from KEYFOB_GRANT_RIGHTS
    logins = models.JSONField(default=list)  # [[login, server], ...] of the owner's links
    rule = models.CharField(max_length=8, choices=Rule.choices, default=Rule.TWO_FACTOR)
    # Until then the rule is not enforced (reminders are mailed); None: no grace.
    grace_until = models.DateTimeField(null=True, blank=True)
    # The last grace reminder mailed (teams.reminders): at most one a day, and one more
    # once the grace period is over (the first pass with reminded_at < grace_until).
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    changed_at = models.DateTimeField(default=clock.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner_id", "created_at", "pk"]
        constraints = [
            # One live grant per owner and member: accepting one invitation twice at once
            # (two browsers) makes one membership.
            models.UniqueConstraint(
                fields=["owner", "member"],
                condition=models.Q(ended_at__isnull=True),
                name="teams_one_live_grant",
            ),
        ]
        indexes = [models.Index(fields=["member", "ended_at"], name="teams_grant_member")]

    def __repr__(self) -> str:
        return f"<Grant owner={self.owner_id} member={self.member_id} rule={self.rule}>"

    __str__ = __repr__


class Invitation(models.Model):
    """An invitation mailed to ``email`` (normal form): its code's digest, as
    core.mailedcodes keeps one (salt, digest, expires_at, tries, used_at, outbox)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations_sent"
    )
    email = models.CharField(max_length=254)
    rights = models.JSONField(default=list)
    logins = models.JSONField(default=list)
    rule = models.CharField(max_length=8, choices=Rule.choices, default=Rule.TWO_FACTOR)
    grace_days = models.PositiveSmallIntegerField(default=0)
    salt = models.CharField(max_length=32)
    digest = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    tries = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    outbox = models.ForeignKey(
        "audit.Outbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now)
    declined_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["email", "used_at"], name="teams_invitation_email")]
