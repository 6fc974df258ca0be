"""The authentication-code field: ASCII digits only, the right length, said plainly."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

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
