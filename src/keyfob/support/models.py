"""A request to turn a customer's 2FA off, its identity checks, and its timeline.

Nothing here holds a document or a code: documents are only marked verified (by whom, with
a note), and an e-mailed check code is kept as a keyed hash. The request's ``state`` only
moves by the compare-and-set UPDATEs in :mod:`keyfob.support.flows`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.models import AccountKind, MailedCode
from keyfob.core import clock


class State(models.TextChoices):
    OPEN = "open", _("Open")
    WAITING = "waiting", _("Waiting for the customer")
    APPROVED = "approved", _("Approved")
    COMPLETED = "completed", _("Completed")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")


# A request in one of these states still leads somewhere; an account has at most one.
ACTIVE_STATES = (State.OPEN, State.WAITING, State.APPROVED)


class Purpose(models.TextChoices):
    """What support is asked to do once it has checked who is asking."""

    TWOFACTOR_OFF = "2fa_off", _("Turn off two-factor authentication")
    EMAIL = "email", _("Change the sign-in address")


class Lost(models.TextChoices):
    """What else the customer who lost their mailbox lost (said on the request)."""

    NOTHING = "nothing", _("Nothing else")
    PASSWORD = "password", _("My password too")
    AUTHENTICATOR = "authenticator", _("My authenticator too")
    BOTH = "both", _("My password and my authenticator too")


class Channel(models.TextChoices):
    """How the customer reached support."""

    SIGNIN = "signin", _("Sign-in page")
    EMAIL = "email", _("E-mail to the support address")
    PHONE = "phone", _("Phone call to support")
    OTHER = "other", _("Other")


class CallOutcome(models.TextChoices):
    CONFIRMED = "confirmed", _("Confirmed by the account holder")
    NO_ANSWER = "no_answer", _("No answer or wrong number")
    DENIED = "denied", _("The person denies asking")


class DocumentKind(models.TextChoices):
    IDENTITY = "identity", _("Proof of identity")
    REGISTRATION = "registration", _("Registration extract (in France, the Kbis)")
    MANAGER_IDENTITY = "manager_identity", _("Proof of identity of the manager")
    DECLARATION = (
        "declaration",
        _(
            "Declaration of existence (in France, a recent SIRENE notice and the prefecture "
            "declaration)"
        ),
    )
    PRESIDENT_IDENTITY = "president_identity", _("Proof of identity of the current president")
    PRESIDENT_ROLE = "president_role", _("Document proving the president's role")


# What each kind of account sends from the profile's e-mail address (linked-pages §1).
REQUIRED_DOCUMENTS: dict[str, tuple[DocumentKind, ...]] = {
    AccountKind.INDIVIDUAL: (DocumentKind.IDENTITY,),
    AccountKind.COMPANY: (DocumentKind.REGISTRATION, DocumentKind.MANAGER_IDENTITY),
    AccountKind.NONPROFIT: (
        DocumentKind.DECLARATION,
        DocumentKind.PRESIDENT_IDENTITY,
        DocumentKind.PRESIDENT_ROLE,
    ),
}


class Request(models.Model):
    """One customer's request to have 2FA turned off by support."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="support_requests"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # Who opened it: the customer themself (empty), or a staff member for them.
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    note = models.TextField(blank=True)
    # The account's kind when the request was opened: it decides the documents asked for.
    account_kind = models.CharField(max_length=16, choices=AccountKind.choices)
    created_at = models.DateTimeField(default=clock.now, db_index=True)
    updated_at = models.DateTimeField(default=clock.now)
    call_outcome = models.CharField(max_length=16, choices=CallOutcome.choices, blank=True)
    reason = models.TextField(blank=True)
    purpose = models.CharField(
        max_length=16, choices=Purpose.choices, default=Purpose.TWOFACTOR_OFF
    )
    # A change of sign-in address (purpose EMAIL): the new address, confirmed by the code
    # e-mailed to it before the request opened (an address of the request, not the
    # account's, until support applies it), and what else the customer lost.
    new_email = models.EmailField(max_length=254, blank=True)
    new_email_confirmed_at = models.DateTimeField(null=True, blank=True)
    lost = models.CharField(max_length=16, choices=Lost.choices, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=Q(state__in=["open", "waiting", "approved"]),
                name="support_one_active_request",
            )
        ]

    def __str__(self) -> str:
        return f"support request {self.pk} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    def required_documents(self) -> tuple[DocumentKind, ...]:
        return REQUIRED_DOCUMENTS.get(self.account_kind, (DocumentKind.IDENTITY,))

    @property
    def is_email_change(self) -> bool:
        return self.purpose == Purpose.EMAIL

    @property
    def lost_authenticator(self) -> bool:
        return self.lost in (Lost.AUTHENTICATOR, Lost.BOTH)

    @property
    def lost_password(self) -> bool:
        return self.lost in (Lost.PASSWORD, Lost.BOTH)

    def documents_from(self) -> str:
        """The address documents must come from: the account's, or for a change of address
        the request's new, confirmed one (the old mailbox is what was lost)."""
        return self.new_email if self.is_email_change else self.user.email


class Step(models.TextChoices):
    """What a timeline row records."""

    OPENED = "opened", _("Request opened")
    CALL = "call", _("Phone call recorded")
    DOCUMENT = "document", _("Document verified")
    CODE_SENT = "code_sent", _("Code e-mailed")
    CODE_OK = "code_ok", _("Code read back correctly")
    CODE_WRONG = "code_wrong", _("Wrong code read back")
    CODE_BURNT = "code_burnt", _("Code burnt after too many wrong tries")
    APPROVED = "approved", _("Identity check passed")
    REJECTED = "rejected", _("Request rejected")
    CANCELLED = "cancelled", _("Request cancelled")
    DISABLED = "disabled", _("Two-factor authentication disabled")
    EMAIL_CHANGED = "email_changed", _("Sign-in address changed")


class RequestEvent(models.Model):
    """One row of a request's timeline. ``actor`` empty: the customer (or the system)."""

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="events")
    step = models.CharField(max_length=16, choices=Step.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    at = models.DateTimeField(default=clock.now)
    address = models.GenericIPAddressField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.step}"


class DocumentCheck(models.Model):
    """A document received from the profile's address and verified. The file is not kept."""

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(max_length=32, choices=DocumentKind.choices)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(default=clock.now)
    received_from = models.EmailField(max_length=254)
    note = models.TextField()

    class Meta:
        ordering = ["verified_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["request", "kind"], name="support_document_once")
        ]

    def __str__(self) -> str:
        return f"{self.kind} verified for request {self.request_id}"


class EmailCheck(MailedCode):
    """A random code e-mailed to the profile's address, to be read back to support.

    An e-mailed code like the others (:mod:`keyfob.core.mailedcodes`): kept only as an HMAC
    keyed by the server's secret and a per-row salt (the code is short: a plain hash in a
    database dump would be found by trying them all), used once by compare-and-set on
    ``used_at``, ``tries`` counting wrong codes with single UPDATEs. The last allowed wrong
    try, or a newer code, burns it (``burnt_at``); a request keeps each code it was sent.
    """

    request = models.ForeignKey(Request, on_delete=models.CASCADE, related_name="email_checks")
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    sent_to = models.EmailField(max_length=254)
    created_at = models.DateTimeField(default=clock.now)
    burnt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __repr__(self) -> str:  # never the digest
        return f"<EmailCheck request={self.request_id} tries={self.tries}>"

    __str__ = __repr__


class LostEmailClaim(MailedCode):
    """ "I no longer have access to my e-mail address", waiting for the code e-mailed to the
    new address (:mod:`keyfob.core.mailedcodes`: only its keyed digest is kept).

    Written the same way whether the account typed exists or not (``user`` empty then), so
    neither the answer nor the work says which. Once the code is typed back, a known
    account's request opens (``request``); an unknown one's opens nothing.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    new_email = models.EmailField(max_length=254)
    lost = models.CharField(max_length=16, choices=Lost.choices)
    language = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    request = models.ForeignKey(
        Request, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __repr__(self) -> str:  # never the digest
        return f"<LostEmailClaim {self.pk} tries={self.tries}>"

    __str__ = __repr__
