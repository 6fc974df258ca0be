"""The authentication-code field: ASCII digits only, the right length, said plainly."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from keyfob import otp
from keyfob.accounts.forms import PasswordCheckForm

# Accept what people type: spaces or a hyphen inside ("123 456"). re.ASCII so that
# Arabic-Indic or full-width digits are refused rather than read as numbers.
_SEPARATORS = re.compile(r"[\s-]", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class CodeField(forms.CharField):
    def __init__(self, *, digits: int = 6, **kwargs: object) -> None:
        self.digits = digits
        attrs = {
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "pattern": r"[0-9 ]*",
            "autofocus": True,
            "spellcheck": "false",
        }
        kwargs.setdefault("label", _("Authentication code"))
        kwargs.setdefault("widget", forms.TextInput(attrs=attrs))
        kwargs.setdefault("error_messages", {"required": _("Enter the code shown in your app.")})
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def clean(self, value: object) -> str:
        text = super().clean(value)
        if len(text) > 64:
            raise ValidationError(_("That is not a code: it is far too long."), code="too_long")
        code = _SEPARATORS.sub("", text)
        if not _DIGITS.fullmatch(code):
            raise ValidationError(_("The code is made of digits (0-9) only."), code="not_digits")
        if len(code) != self.digits:
            raise ValidationError(
                _("The code has %(digits)d digits; you typed %(typed)d."),
                code="length",
                params={"digits": self.digits, "typed": len(code)},
            )
        return code


class CodeForm(forms.Form):
    code = CodeField()


class DisableForm(PasswordCheckForm):
    code = CodeField()
    recovery = False  # a current code from the app, not a recovery code


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

    trust = forms.BooleanField(label=_("Trust this browser for 30 days"), required=False)

    def __init__(self, *args: object, recovery: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
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
        widget=forms.RadioSelect,
        initial="totp",
    )


class SavedCodesForm(forms.Form):
    saved = forms.BooleanField(
        label=_("I have saved these recovery codes somewhere safe"),
        error_messages={"required": _("Tick the box once you have saved the codes.")},
    )
