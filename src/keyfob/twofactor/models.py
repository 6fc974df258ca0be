"""An account's authenticator: its encrypted secret and the single-use state."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from keyfob.core import clock, keyring

# The name an app or a key has when its holder gave none. Events and notices record it
# untranslated (the English text, a message id), so each reader sees it in their own
# language: the Security page's reader, a notice's recipient (:func:`shown_name`).
DEFAULT_APP_NAME = gettext_noop("Authenticator app")
DEFAULT_KEY_NAME = gettext_noop("Security key")
DEFAULT_NAMES = frozenset({DEFAULT_APP_NAME, DEFAULT_KEY_NAME})


def shown_name(recorded: object) -> str:
    """An app's or key's name as recorded (a ``label``, an event's or notice's ``name``), in
    the active language: a default name translated, any other as it was given."""
    if recorded in DEFAULT_NAMES:
        return gettext(str(recorded))
    return "" if recorded is None else str(recorded)


class Kind(models.TextChoices):
    TOTP = "totp", _("Time-based")
    HOTP = "hotp", _("Counter-based")


class Authenticator(models.Model):
    """One of an account's named authenticator apps. Pending (``confirmed_at`` empty) until
    a code proves the app has it; an account has at most one pending at a time.

    ``last_step`` is the last TOTP time step accepted and ``counter`` the next HOTP counter
    expected; both only move forward, by compare-and-set UPDATEs in ``flows``, each on its
    own row (single use per authenticator).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authenticators"
    )
    name = models.CharField(max_length=60, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TOTP)
    secret_encrypted = models.TextField()
    algorithm = models.CharField(max_length=8, default="SHA1")
    digits = models.PositiveSmallIntegerField(default=6)
    period = models.PositiveSmallIntegerField(default=30)
    last_step = models.BigIntegerField(default=-1)
    counter = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=clock.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __repr__(self) -> str:  # never the secret
        return f"<Authenticator user={self.user_id} kind={self.kind} confirmed={self.is_confirmed}>"

    __str__ = __repr__

    @property
    def label(self) -> str:
        """The name the holder gave it, as events and notices record it; one given none (as
        one carried over from the days of one per account) is :data:`DEFAULT_APP_NAME`,
        untranslated. Pages show :attr:`display_name`."""
        return self.name or DEFAULT_APP_NAME

    @property
    def display_name(self) -> str:
        """:attr:`label` in the active language."""
        return shown_name(self.label)

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    # The encryption context is the account's, not the row's: rows carried over from the
    # days of one authenticator per account decrypt unchanged, and a secret still cannot be
    # moved to another account's row.
    @staticmethod
    def _context(user_id: int) -> str:
        return f"authenticator:{user_id}"

    def set_secret(self, secret: bytes) -> None:
        self.secret_encrypted = keyring.encrypt(secret, context=self._context(self.user_id))

    def secret(self) -> bytes:
        return keyring.decrypt(self.secret_encrypted, context=self._context(self.user_id))


class RecoveryCode(models.Model):
    """One recovery code, kept only as a salted SHA-256 of its canonical form.

    A code carries 79 random bits, so a fast salted hash is enough: nothing short of the
    code itself finds it, and checking ten of them costs microseconds, not seconds.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    salt = models.CharField(max_length=32)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=clock.now)
    used_at = models.DateTimeField(null=True, blank=True)

    def __repr__(self) -> str:
        return f"<RecoveryCode user={self.user_id} used={self.used_at is not None}>"

    __str__ = __repr__


class TrustedBrowser(models.Model):
    """A browser allowed to skip the code step for a while, after a right password.

    The cookie carries a random token; only its SHA-256 is stored. Each use replaces the
    token by compare-and-set on the old digest, so a copied cookie works at most once.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_browsers"
    )
    digest = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    last_used_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_used_at", "-pk"]

    def __repr__(self) -> str:
        return f"<TrustedBrowser user={self.user_id} label={self.label!r}>"

    __str__ = __repr__


class SecurityKey(models.Model):
    """A security key or passkey (WebAuthn credential) of an account; confirmed from the
    start, since its registration is its proof.

    Only the public key is kept, so there is nothing here to encrypt. ``sign_count`` only
    moves forward, by compare-and-set (``flows.webauthn``); an authenticator that keeps no
    counter always reports 0. ``user_verified`` says whether the key verified its user (PIN,
    fingerprint) when it was registered: only such a key, and a discoverable one, may sign in
    without the password.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="security_keys"
    )
    name = models.CharField(max_length=60, blank=True)
    credential_id = models.CharField(max_length=1400, unique=True)  # base64url
    public_key = models.BinaryField()  # COSE
    sign_count = models.BigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    aaguid = models.CharField(max_length=36, blank=True)
    backup_eligible = models.BooleanField(default=False)
    backed_up = models.BooleanField(default=False)
    user_verified = models.BooleanField(default=False)
    discoverable = models.BooleanField(default=False)
    # The random id the key holds for the account (base64url); the same for all of an
    # account's keys, never its e-mail address or database id.
    user_handle = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Not stored: whether the key verified its user in the answer just checked
    # (``flows.verify_key`` sets it), for the session's proof.
    verified_user_now: bool = False

    class Meta:
        ordering = ["created_at", "pk"]

    def __repr__(self) -> str:
        return f"<SecurityKey user={self.user_id} synced={self.backup_eligible}>"

    __str__ = __repr__

    @property
    def label(self) -> str:
        """As :attr:`Authenticator.label`: the name given, or :data:`DEFAULT_KEY_NAME`
        untranslated."""
        return self.name or DEFAULT_KEY_NAME

    @property
    def display_name(self) -> str:
        """:attr:`label` in the active language."""
        return shown_name(self.label)

    @property
    def kind_label(self) -> str:
        """What it is, as the Security page says it: a passkey synced between devices (its
        private key lives in a password manager or a phone's cloud account) or a key that
        never leaves its device."""
        if self.backup_eligible:
            return str(_("Synced passkey"))
        if self.discoverable:
            return str(_("Passkey on one device"))
        return str(_("Security key"))

    @property
    def passwordless(self) -> bool:
        """Whether it may sign in without the password (both factors in one): it verified
        its user when added, and holds the account (a browser that does not say so at
        registration is believed at the first sign-in the key answers without being told
        which account, which only a key that holds it can do)."""
        return self.user_verified and self.discoverable


class Purpose(models.TextChoices):
    """What a WebAuthn challenge is for; a response is checked against its own only."""

    REGISTER = "register"
    SIGNIN = "signin"  # the second factor, after the password
    REAUTH = "reauth"  # "Confirm it is you"
    PASSWORDLESS = "passwordless"  # a passkey, without the password


class WebAuthnChallenge(models.Model):
    """A challenge given to the browser, used at most once (DESIGN.md invariant 1) and for a
    few minutes. ``binding`` is the SHA-256 of a random token kept in the session that asked
    for it: a challenge answered from another session is not found."""

    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    binding = models.CharField(max_length=64, unique=True)
    challenge = models.BinaryField()
    # Registration only: the account's user handle given to the key with this challenge.
    user_handle = models.CharField(max_length=100, blank=True)
    # Passwordless only: who asked (no account yet), to bound what one address can make.
    address = models.GenericIPAddressField(null=True, blank=True)
    # ... and its network (an IPv6 /64, an IPv4 /24, as CIDR text), bounded as a whole.
    network = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["address", "expires_at"]),
            models.Index(fields=["network", "expires_at"]),
        ]

    def __repr__(self) -> str:
        return f"<WebAuthnChallenge {self.purpose} user={self.user_id}>"

    __str__ = __repr__


class StaffKeyInvite(models.Model):
    """A one-time enrolment code that lets a staff member add their first security key
    (``keyfob staff-key-invite``). Without one, a password and a relayed code would be
    enough to add the key a phishing page's owner holds, and from then on pass the staff
    rule with it. Only the SHA-256 of the code is kept (it carries 79 random bits, so nothing
    short of the code finds it); it is used at most once, by compare-and-set on ``used_at``
    (DESIGN.md invariant 1), and for an hour."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_key_invites"
    )
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __repr__(self) -> str:  # never the digest
        return f"<StaffKeyInvite user={self.user_id} used={self.used_at is not None}>"

    __str__ = __repr__
