"""An account's authenticator: its encrypted secret and the single-use state."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from keyfob import clock
from keyfob.twofactor import keyring


class Kind(models.TextChoices):
    TOTP = "totp", _("Time-based")
    HOTP = "hotp", _("Counter-based")


class Authenticator(models.Model):
    """One per account. Pending (``confirmed_at`` empty) until a code proves the app has it.

    ``last_step`` is the last TOTP time step accepted and ``counter`` the next HOTP counter
    expected; both only move forward, by compare-and-set UPDATEs in ``flows``.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authenticator"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TOTP)
    secret_encrypted = models.TextField()
    algorithm = models.CharField(max_length=8, default="SHA1")
    digits = models.PositiveSmallIntegerField(default=6)
    period = models.PositiveSmallIntegerField(default=30)
    last_step = models.BigIntegerField(default=-1)
    counter = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=clock.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __repr__(self) -> str:  # never the secret
        return f"<Authenticator user={self.user_id} kind={self.kind} confirmed={self.is_confirmed}>"

    __str__ = __repr__

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    @staticmethod
    def _context(user_id: int) -> str:
        return f"authenticator:{user_id}"

    def set_secret(self, secret: bytes) -> None:
        self.secret_encrypted = keyring.encrypt(secret, context=self._context(self.user_id))

    def secret(self) -> bytes:
        return keyring.decrypt(self.secret_encrypted, context=self._context(self.user_id))
