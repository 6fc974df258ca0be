"""The forms that take an authentication code (its field lives in keyfob.accounts.forms)."""

from __future__ import annotations

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


class SignInCodeForm(forms.Form):
    """The sign-in's second step: a code, or a recovery code, and whether to trust this browser."""

    trust = forms.BooleanField(required=False)

    def __init__(self, *args: object, recovery: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        days = app_settings.trust_days  # KEYFOB_TRUST_DAYS: the label says what is granted
        self.fields["trust"].label = ngettext(
            "Trust this browser for %(days)d day", "Trust this browser for %(days)d days", days
        ) % {"days": days}
        field: forms.Field = RecoveryCodeField() if recovery else CodeField()
        self.fields = {("recovery_code" if recovery else "code"): field, **self.fields}
        self.recovery = recovery

    @property
    def secret_value(self) -> str:
        return str(self.cleaned_data["recovery_code" if self.recovery else "code"])


class ReauthForm(PasswordCheckForm):
    """Password and, with 2FA on, a current code or a recovery code."""

    def __init__(
        self, *args: object, second_factor: bool, recovery: bool, **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.recovery = recovery
        # Not autofocused: the password comes first on this form.
        if second_factor and recovery:
            self.fields["recovery_code"] = RecoveryCodeField(
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
            )
        elif second_factor:
            self.fields["code"] = CodeField(
                widget=forms.TextInput(
                    attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}
                )
            )


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


class SavedCodesForm(forms.Form):
    saved = forms.BooleanField(
        label=_("I have saved these recovery codes somewhere safe"),
        error_messages={"required": _("Tick the box once you have saved the codes.")},
    )


# A browser's WebAuthn answer is well under this (a credential id has at most 1023 bytes);
# anything longer is refused before it is parsed.
MAX_CREDENTIAL = 20_000


class CredentialForm(forms.Form):
    """The browser's answer to a WebAuthn challenge, as webauthn.js writes it (JSON). Its
    contents are checked by the flow; the form only bounds it."""

    credential = forms.CharField(max_length=MAX_CREDENTIAL, widget=forms.HiddenInput)
