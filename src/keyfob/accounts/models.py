"""The account (custom user model), an e-mail change waiting for its code, and a password
reset waiting for its code."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.addresses import normal_email
from keyfob.core import clock

# E.164: a plus sign, a country code that does not start with 0, at most 15 digits in all.
phone_validator = RegexValidator(
    r"\A\+[1-9][0-9]{6,14}\Z",
    _("Enter the number in international form, for example +33123456789."),
    code="invalid_phone",
)


class AccountKind(models.TextChoices):
    INDIVIDUAL = "individual", _("Individual")
    COMPANY = "company", _("Company")
    NONPROFIT = "nonprofit", _("Non-profit organisation")


class Language(models.TextChoices):
    EN = "en", "English"
    FR = "fr", "Français"


class UserManager(BaseUserManager):  # type: ignore[type-arg]
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        # Django's lower-cases the domain with str.lower() (the Kelvin sign becomes "k"):
        # Keyfob's one normal form instead.
        return normal_email(email or "")

    def get_by_natural_key(self, username: str | None) -> User:
        # What ModelBackend (the sign-in's password check) looks an account up by.
        user: User = self.get(email=normal_email(username or ""))
        return user

    def with_email(self, email: str) -> models.QuerySet[User]:
        """The account (none or one) whose address is ``email`` in the normal form: the
        only way Keyfob looks an account up by a typed address."""
        return self.filter(email=normal_email(email))

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user: User = self.model(email=normal_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("email"), unique=True, max_length=254)
    display_name = models.CharField(_("name"), max_length=150, blank=True)
    phone = models.CharField(
        _("phone number"), max_length=16, blank=True, validators=[phone_validator]
    )
    kind = models.CharField(
        _("account kind"),
        max_length=16,
        choices=AccountKind.choices,
        default=AccountKind.INDIVIDUAL,
    )
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, blank=True, default=""
    )
    # Empty: none chosen; pages then show times in the browser's zone, notices in UTC.
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")
    # The language the portal last showed this account (kept by AccountPreferencesMiddleware
    # and the password reset): notices go out in it, even when the profile leaves the choice
    # to the browser.
    last_language = models.CharField(max_length=8, blank=True, default="")
    # A second address for security notices only (confirmed by a code sent to it): every
    # notice to the sign-in address is copied there (keyfob.audit.notices.queue); it never
    # receives a code, never signs in, and never stands in for the identity check.
    notice_email = models.EmailField(_("address for security notices"), max_length=254, blank=True)
    is_staff = models.BooleanField(_("support staff"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=clock.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")

    def __str__(self) -> str:
        return self.email

    @classmethod
    def normalize_username(cls, username: str) -> str:
        # Django's applies NFKC, which turns "example.com" in full-width letters into
        # "example.com" in ASCII:
        # another mailbox. Keyfob's one normal form instead (full_clean() calls this).
        return normal_email(username)

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Stored in the normal form whatever the path (a form, a command, a shell), so the
        # unique index is unique in that form.
        self.email = normal_email(self.email)
        super().save(*args, **kwargs)

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return self.display_name or self.email


class MailedCode(models.Model):
    """What a code e-mailed to an address keeps while it waits to be typed back: only its
    keyed digest (and salt), when it expires, the wrong tries, when it was used, and the
    notice that carries it sealed (so the seal can be wiped once the code is spent).

    Started and checked by the one life cycle in :mod:`keyfob.core.mailedcodes` (the e-mail
    change and the password reset here, support's identity check)."""

    salt = models.CharField(max_length=32)
    digest = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    tries = models.PositiveIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    outbox = models.ForeignKey(
        "audit.Outbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True


class EmailChange(MailedCode):
    """A new sign-in address waiting for the code e-mailed to it (one per account).

    Only the code's keyed digest is kept. Tries are counted, and the code used, each by one
    conditional UPDATE (:func:`keyfob.core.consume.consume`), so concurrent requests lose no
    count and two right codes at once change the address once.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="email_change")
    email = models.EmailField(max_length=254)

    def __repr__(self) -> str:  # never the digest
        return f"<EmailChange user={self.user_id} tries={self.tries}>"

    __str__ = __repr__


class PasswordReset(MailedCode):
    """A password reset waiting for its code (one per address typed, in the normal form).

    The code goes to the account's own address; an address no account uses is only told
    so. Keyed by a digest of the address typed, known or not, and written the same way for both
    (``user`` empty for an unknown address), so the answer and the work done say nothing of
    whether an account uses it. Only the code's keyed digest is kept; tries and use are each
    one conditional UPDATE (:func:`keyfob.core.consume.consume`).
    """

    email_key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    def __repr__(self) -> str:  # never the digest
        return f"<PasswordReset user={self.user_id} tries={self.tries}>"

    __str__ = __repr__


class NoticeEmailChange(MailedCode):
    """A second address for security notices waiting for the code e-mailed to it (one per
    account), like :class:`EmailChange`."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="notice_email_change")
    email = models.EmailField(max_length=254)

    def __repr__(self) -> str:  # never the digest
        return f"<NoticeEmailChange user={self.user_id} tries={self.tries}>"

    __str__ = __repr__


class SignIn(models.Model):
    """One signed-in session of an account: where and when it started, when it was last seen,
    and (its :class:`Proof` rows) how it proved who it is.

    The session is found by a digest of its key, never the key itself: a database dump
    lets no one take over a session. ``ended_at`` is set when it is signed out (by its
    holder, from another browser, by a password reset or by support); ``keyfob
    prune-activity`` deletes ended rows.
    """

    session_digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="signins")
    started_at = models.DateTimeField(default=clock.now)
    last_seen_at = models.DateTimeField(default=clock.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-pk"]
        indexes = [models.Index(fields=["user", "ended_at"], name="signin_user_live")]

    def __repr__(self) -> str:  # never the digest
        return f"<SignIn user={self.user_id} ended={self.ended_at is not None}>"

    __str__ = __repr__


class Factor(models.TextChoices):
    """What a proof was made with."""

    PASSWORD = "password", _("Password")
    APP_CODE = "code", _("Authenticator app code")
    RECOVERY = "recovery", _("Recovery code")
    SECURITY_KEY = "security_key", _("Security key")
    PASSKEY = "passkey", _("Passkey")
    TRUSTED_BROWSER = "trusted", _("Trusted browser")


class Proof(models.Model):
    """One factor a signed-in session proved, and when (DESIGN.md invariant 8).

    The authenticator that made it is named generically (``authenticator_kind`` and
    ``authenticator_id``: accounts does not know twofactor's models); twofactor tells
    accounts when one is removed or flagged as a possible copy, and its proofs die
    (``revoked_at``). So do password proofs when the password changes, and every
    second-factor proof when 2FA is turned off.
    """

    signin = models.ForeignKey(SignIn, on_delete=models.CASCADE, related_name="proofs")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    factor = models.CharField(max_length=16, choices=Factor.choices)
    authenticator_kind = models.CharField(max_length=16, blank=True)
    authenticator_id = models.BigIntegerField(null=True, blank=True)
    # The authenticator's name when the proof was made (shown on the Security page).
    authenticator_name = models.CharField(max_length=60, blank=True)
    user_verified = models.BooleanField(default=False)
    at = models.DateTimeField(default=clock.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            models.Index(
                fields=["user", "authenticator_kind", "authenticator_id"],
                name="proof_authenticator",
            )
        ]

    def __repr__(self) -> str:
        return f"<Proof signin={self.signin_id} factor={self.factor}>"

    __str__ = __repr__
