"""The provider's own rows beside django-oauth-toolkit's (grants, tokens, ID tokens):

- :class:`Client`, the swapped-in application model: an app the operator registered
  (``keyfob oidc-client``), with Keyfob's rules for it;
- :class:`SigningKey`, the keys ID tokens are signed with, kept encrypted;
- :class:`Authorization`, how the session that let an app in had signed in (the sign-in
  record, invariant 8), carried by every token the app gets from it;
- :class:`Consent`, what a person allowed an app, remembered and revocable;
- :class:`LogoutDelivery`, a back-channel logout an app is owed, queued in the transaction
  that ended the session and delivered by the outbox sender.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import AbstractApplication

from keyfob.core import clock


def _https_or_loopback(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
    )


class Client(AbstractApplication):
    """An app that signs people in through Keyfob.

    ``skip_authorization`` is what ``--first-party`` sets (the provider's own apps: no
    consent page). ``require_phishing_resistant``: tokens only for sessions a security key
    or passkey proved. ``revoked_at``: ``keyfob oidc-client revoke``; nothing it holds
    works any more."""

    require_phishing_resistant = models.BooleanField(default=False)
    backchannel_logout_uri = models.URLField(max_length=500, blank=True, default="")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

    @property
    def jwk_key(self):
        """The key ID tokens are signed with now (every client: RS256 under Keyfob's key)."""
        from keyfob.oidc import keys

        return keys.current().jwk

    def clean(self) -> None:
        """The library's checks, but for the RSA key it looks for in settings: Keyfob's
        signing key lives in the database (``keys.current``), made on first use."""
        try:
            super().clean()
        except ValidationError as exc:
            errors = {
                field: [m for m in messages if "OIDC_RSA_PRIVATE_KEY" not in str(m)]
                for field, messages in exc.message_dict.items()
            }
            errors = {field: messages for field, messages in errors.items() if messages}
            if errors:
                raise ValidationError(errors) from None

    def get_allowed_schemes(self) -> list[str]:
        """https only; plain http for an app on this very machine (a loopback address, as
        RFC 8252 allows for native apps), whose traffic never leaves it."""
        schemes = list(super().get_allowed_schemes())
        uris = self.redirect_uris.split() + self.post_logout_redirect_uris.split()
        if "http" not in schemes and uris and all(_https_or_loopback(u) for u in uris):
            schemes.append("http")
        return schemes

    def is_usable(self, request: object) -> bool:
        return self.revoked_at is None and bool(super().is_usable(request))


class SigningKey(models.Model):
    """An RSA key that signs ID tokens. The private key is a key-ring ciphertext (never in
    the clear at rest). The newest key not retired signs; a retired key's public half stays
    published until what it signed has expired (``keyfob rotate-keys``)."""

    kid = models.CharField(max_length=64, unique=True)
    private_key = models.TextField()
    created_at = models.DateTimeField(default=clock.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    # True for the one key that signs, None once retired: unique, so two processes making
    # the first key at once make one (the other's insert fails and it reads the winner's).
    signing = models.BooleanField(null=True, default=True, unique=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class Authorization(models.Model):
    """An app let in by one signed-in session: how that session had signed in when it did
    (``amr``/``acr``/``auth_time`` of the ID token), which grant, device grant and refresh
    token family came from it. Ending the session ends it and revokes those tokens."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_authorizations"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="authorizations")
    # Kept when the record is pruned: the tokens' claims are this row's own copy.
    signin = models.ForeignKey(
        "accounts.SignIn", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    auth_time = models.DateTimeField()
    amr = models.JSONField(default=list)
    acr = models.CharField(max_length=16)
    # The factors of the session's live proofs when it let the app in (accounts' Factor
    # values): what teams' rules read once the sign-in record is gone. While it lives,
    # its live proofs are read again instead (a refresh, a certificate).
    factors = models.JSONField(default=list)
    # The accounts (owners' ids) the ``keyfob_grants`` claim listed in a token from this
    # authorization: removing a member from one of them revokes these tokens (issue 27).
    acts_for = models.JSONField(default=list)
    grant = models.OneToOneField(
        "oauth2_provider.Grant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="keyfob_authorization",
    )
    device_grant = models.OneToOneField(
        "oauth2_provider.DeviceGrant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="keyfob_authorization",
    )
    token_family = models.UUIDField(null=True, blank=True, db_index=True)
    # The ID token's ``sid``: names the sign-in (the same for every app it let in) without
    # its session key (``logout_token.sid_for``). Kept here so the back-channel logout says
    # what the app was told even after the record is pruned.
    sid = models.CharField(max_length=64, blank=True, default="")
    # The ID token's ``iss`` (from the request when KEYFOB_OIDC_ISSUER is empty): the
    # logout token, built later with no request at hand, must say the same.
    issuer = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=clock.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["signin", "ended_at"], name="oidc_auth_signin")]


class Consent(models.Model):
    """A person allowed an app to sign them in with these scopes ("Allow"), until they
    revoke it on the Security page."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oidc_consents"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="consents")
    scopes = models.TextField(default="")
    granted_at = models.DateTimeField(default=clock.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "client"], name="oidc_consent_once")]
        verbose_name = _("consent")


class DeliveryState(models.TextChoices):
    QUEUED = "queued"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after the last attempt


class LogoutDelivery(models.Model):
    """A logout token owed to an app's back-channel logout URI (OpenID Connect Back-Channel
    Logout 1.0): one per app and ended sign-in (``sid``), written in the transaction that
    ended it (DESIGN.md invariant 4), delivered with retries like the e-mail outbox.

    Only what the token is built from is stored; the token itself is made and signed at
    each attempt, so it is always fresh (``iat``/``exp``) and no token sits in the table.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=255)  # the ID token's ``sub``
    sid = models.CharField(max_length=64, blank=True)
    issuer = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=clock.now)
    claimed_by = models.CharField(max_length=64, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # "HTTP 500", "ConnectionRefusedError", "timeout": never the app's reply text.
    last_status = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="oidc_logout_due")]

    def __repr__(self) -> str:
        return f"<LogoutDelivery {self.pk} client={self.client_id} {self.state}>"

    __str__ = __repr__


class DeviceState(models.Model):
    """Keyfob's own facts about a device grant (RFC 8628) beside the library's row: the
    address the device asked from (shown on the approval page), its last poll (``slow_down``)
    and when its tokens were given (a device code is single use)."""

    device_grant = models.OneToOneField(
        "oauth2_provider.DeviceGrant", on_delete=models.CASCADE, related_name="keyfob_state"
    )
    address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
