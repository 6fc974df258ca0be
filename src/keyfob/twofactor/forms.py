"""The forms that take an authentication code (its field lives in keyfob.accounts.forms) or
a security key's answer."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from keyfob import otp
from keyfob.accounts.forms import CodeField, PasswordCheckForm
from keyfob.twofactor.app_settings import app_settings


class CodeForm(forms.Form):
    code = CodeField()


class SetupCodeForm(CodeForm):
    """The code that confirms a new key. Not autofocused: focus would scroll the page past
    steps 1 and 2 (install an app, scan the code), which come first."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["code"].widget.attrs.pop("autofocus", None)


class RecoveryCodeField(forms.CharField):
    """A recovery code as typed: case, spaces and hyphens forgiven; the alphabet checked."""

    def __init__(self, **kwargs: object) -> None:
        attrs = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
        kwargs.setdefault("label", _("Recovery code"))
        kwargs.setdefault("widget", forms.TextInput(attrs={**attrs, "autofocus": True}))
        kwargs.setdefault("error_messages", {"required": _("Enter one of your recovery codes.")})
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def clean(self, value: object) -> str:
        text = super().clean(value)
        try:
            return otp.normalize_recovery_code(text)
        except otp.InvalidCode:
            raise ValidationError(
                _("A recovery code has 16 letters and digits, like ABCD-EFGH-JKMN-PQRS."),
                code="format",
            ) from None


class Way(StrEnum):
    """How a person gives the second factor on a page that asks for it."""

    KEY = "key"  # a security key or passkey (WebAuthn)
    CODE = "code"  # a code from an authenticator app
    RECOVERY = "recovery"  # one of the recovery codes


# A browser's answer to a WebAuthn ceremony is a JSON object of a few kilobytes (a key's
# credential id is at most 1023 bytes); anything far longer is not one.
MAX_KEY_ANSWER = 32_000


def clean_key_answer(form: forms.Form, cleaned: dict[str, Any]) -> dict[str, Any]:
    """Put the browser's answer to the page's WebAuthn ceremony in ``cleaned["credential"]``.

    It arrives as JSON in a hidden ``credential`` input that the template writes itself
    (webauthn.js fills it; nobody types it, so it has no label and is no field of the
    form). Missing or oversized, it is an error of the whole form; whether it proves a key
    is the flow's to say.
    """
    answer = form.data.get("credential")
    if not isinstance(answer, str) or not answer.strip():
        raise ValidationError(
            _("Use your security key first: press the button, then touch or unlock the key."),
            code="no_answer",
        )
    if len(answer) > MAX_KEY_ANSWER:
        raise ValidationError(
            _("This is not an answer from a security key. Press the button to try again."),
            code="too_long",
        )
    cleaned["credential"] = answer
    return cleaned


class SignInCodeForm(forms.Form):
    """The sign-in's second step: a code, a recovery code or a security key's answer, and
    whether to trust this browser."""

    trust = forms.BooleanField(required=False)

    def __init__(self, *args: object, way: Way = Way.CODE, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        days = app_settings.trust_days  # KEYFOB_TRUST_DAYS: the label says what is granted
        self.fields["trust"].label = ngettext(
            "Trust this browser for %(days)d day", "Trust this browser for %(days)d days", days
        ) % {"days": days}
        if way == Way.RECOVERY:
            self.fields = {"recovery_code": RecoveryCodeField(), **self.fields}
        elif way == Way.CODE:
            self.fields = {"code": CodeField(), **self.fields}
        self.way = way

    @property
    def recovery(self) -> bool:
        return self.way == Way.RECOVERY

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        return clean_key_answer(self, cleaned) if self.way == Way.KEY else cleaned


class ReauthForm(PasswordCheckForm):
    """Password and, with 2FA on, a current code, a recovery code or a security key."""

    def __init__(
        self, *args: object, second_factor: bool, way: Way = Way.CODE, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.way = way if second_factor else None
        # Not autofocused: the password comes first on this form.
        if self.way == Way.RECOVERY:
            self.fields["recovery_code"] = RecoveryCodeField(
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
            )
        elif self.way == Way.CODE:
            self.fields["code"] = CodeField(
                widget=forms.TextInput(
                    attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}
                )
            )

    @property
    def recovery(self) -> bool:
        return self.way == Way.RECOVERY

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        return clean_key_answer(self, cleaned) if self.way == Way.KEY else cleaned


class SetupKindForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Type of codes"),
        choices=[("totp", _("Time-based (recommended)")), ("hotp", _("Counter-based"))],
        help_text=_(
            "Time-based codes change every 30 seconds and suit every authenticator app. "
            "Choose counter-based codes only if your app or device asks for them."
        ),
        widget=forms.RadioSelect,
        initial="totp",
    )


class AuthenticatorNameForm(forms.Form):
    """The name an authenticator app is listed under ("Phone", "Tablet"): optional when it
    is added, required to rename it."""

    name = forms.CharField(
        label=_("Name of this authenticator app"),
        help_text=_("For example “Work phone”: it tells your apps apart on this page."),
        max_length=60,
        error_messages={
            "required": _("Enter a name."),
            "max_length": _("A name has at most 60 characters."),
        },
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: object, required: bool = True, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["name"].required = required


class KeyNameForm(AuthenticatorNameForm):
    """The name a security key is listed under: optional when it is added, required to
    rename it."""

    def __init__(self, *args: object, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].label = _("Name of this security key")
        self.fields["name"].help_text = _(
            "For example “Blue key” or “Laptop”: it tells your keys apart on the Security page."
        )


class AddKeyForm(KeyNameForm):
    """Adding a security key: its name (optional) and the browser's answer to the
    registration ceremony; with ``invite``, a staff member's first key, the enrolment code
    an operator gave them."""

    def __init__(self, *args: object, invite: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, required=False, **kwargs)
        if invite:
            self.fields["invite"] = forms.CharField(
                label=_("Enrolment code"),
                help_text=_(
                    "As a staff member, your first security key needs the one-time code an "
                    "operator gave you in person or on a call. It works for an hour."
                ),
                max_length=40,
                error_messages={
                    "required": _("Enter the enrolment code an operator gave you."),
                    "max_length": _("An enrolment code is 16 letters and digits."),
                },
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            )

    def clean(self) -> dict[str, Any]:
        return clean_key_answer(self, super().clean() or {})


class SavedCodesForm(forms.Form):
    saved = forms.BooleanField(
        label=_("I have saved these recovery codes somewhere safe"),
        error_messages={"required": _("Tick the box once you have saved the codes.")},
    )


class CredentialForm(forms.Form):
    """The browser's answer to the passkey sign-in's challenge, read as every key page
    reads it (:func:`clean_key_answer`); whether it proves a key is the flow's to say."""

    def clean(self) -> dict[str, Any]:
        return clean_key_answer(self, super().clean() or {})
