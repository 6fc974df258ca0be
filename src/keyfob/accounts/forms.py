"""Forms validate input and say clearly what is wrong; they change nothing themselves."""

from __future__ import annotations

import re
import zoneinfo
from typing import TYPE_CHECKING

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.models import Language, User, phone_validator

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

TIME_ZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})

# Long enough for any real password, short enough that argon2 never hashes a 10 kB paste.
MAX_PASSWORD = 256


def email_field(
    label: StrOrPromise, *, autocomplete: str, autofocus: bool = False
) -> forms.EmailField:
    """An account's e-mail address, with the messages every form here uses."""
    attrs: dict[str, object] = {"autocomplete": autocomplete}
    if autofocus:
        attrs["autofocus"] = True
    return forms.EmailField(
        label=label,
        max_length=254,
        error_messages={
            "required": _("Enter your e-mail address."),
            "invalid": _("Enter a valid e-mail address."),
            "max_length": _("This e-mail address is too long."),
        },
        widget=forms.EmailInput(attrs=attrs),
    )


def password_field() -> forms.CharField:
    """The account's current password, bounded so argon2 never hashes a huge paste."""
    return forms.CharField(
        label=_("Password"),
        max_length=MAX_PASSWORD,
        strip=False,
        error_messages={
            "required": _("Enter your password."),
            "max_length": _("This password is too long."),
        },
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class LoginForm(forms.Form):
    # "webauthn": the browser may offer the account's passkeys in this field's autofill
    # (the sign-in page's passkey form asks for one as the page loads).
    email = email_field(_("Email"), autocomplete="username webauthn", autofocus=True)
    password = password_field()


class ProfileForm(forms.ModelForm):  # type: ignore[type-arg]
    # Longer than the stored number: the spaces people type are taken out (clean_phone).
    phone = forms.CharField(
        label=_("Phone number"),
        required=False,
        max_length=24,
        error_messages={"max_length": _("This phone number is too long.")},
        help_text=_(
            "In international form, e.g. +33123456789. Support calls this number "
            "before turning off two-factor authentication for you."
        ),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )

    class Meta:
        model = User
        fields = ["display_name", "phone", "kind", "language", "time_zone"]
        labels = {
            "display_name": _("Name"),
            "kind": _("Account kind"),
            "language": _("Language"),
            "time_zone": _("Time zone"),
        }
        # What browsers and password managers fill in, and a phone keypad for the number.
        widgets = {
            "display_name": forms.TextInput(attrs={"autocomplete": "name"}),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        language = self.fields["language"]
        assert isinstance(language, forms.TypedChoiceField)
        language.choices = [("", _("Browser's language")), *Language.choices]
        # Empty: pages show times in the browser's own zone (notices, sent by e-mail, in UTC).
        self.fields["time_zone"] = forms.ChoiceField(
            label=_("Time zone"),
            required=False,
            choices=[
                ("", _("Browser's time zone")),
                *((z, z.replace("_", " ")) for z in TIME_ZONES),
            ],
            help_text=_("Times on your Security page and in notices are shown in this zone."),
        )

    def clean_phone(self) -> str:
        # As the set-up page takes it (PhoneForm): spaces, dots, dashes and brackets
        # between the groups are what people type; only what is dialled is kept.
        phone = normalise_phone(str(self.cleaned_data.get("phone") or ""))
        if phone:
            phone_validator(phone)
        return phone


class PasswordCheckForm(forms.Form):
    """The current password, asked again before a sensitive change."""

    password = password_field()


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


class EmailChangeForm(forms.Form):
    email = email_field(_("New e-mail address"), autocomplete="email")

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user

    def clean_email(self) -> str:
        email = normal_email(str(self.cleaned_data["email"]))
        if email == self.user.email:
            raise forms.ValidationError(_("This is already your address."), code="same")
        # Whether another account has it is not said here (that would tell anyone with a
        # session which addresses have accounts): only the code sent to it tells, at the
        # confirmation, whoever reads that mailbox.
        return email


class EmailCodeForm(forms.Form):
    code = CodeField(
        digits=8,
        label=_("Code from the e-mail"),
        error_messages={"required": _("Enter the code we e-mailed to the new address.")},
    )


class ResetRequestForm(forms.Form):
    email = email_field(_("Email"), autocomplete="username", autofocus=True)


def new_password_field(label: StrOrPromise) -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=MAX_PASSWORD,
        strip=False,
        error_messages={
            "required": _("Enter a new password."),
            "max_length": _("This password is too long."),
        },
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


class NewPasswordForm(forms.Form):
    """A new password, twice, with the rules in plain sentences as its help text: one form
    for changing it (signed in) and for resetting it (:class:`ResetCodeForm`), so both pages
    read the same. ``user``, when known, is checked against (not like its name or address);
    without one, the flow checks once it knows the account."""

    new_password1 = new_password_field(_("New password"))
    new_password2 = new_password_field(_("New password again"))

    def __init__(self, *args: object, user: User | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user
        # Plain sentences (Django's HTML list would not sit inside the help paragraph that
        # the field's aria-describedby names).
        rules = password_validation.password_validators_help_texts()
        self.fields["new_password1"].help_text = " ".join(str(r) for r in rules)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        first, second = data.get("new_password1"), data.get("new_password2")
        if isinstance(first, str) and isinstance(second, str):
            if first != second:
                self.add_error(
                    "new_password2",
                    ValidationError(_("The two passwords are not the same."), code="mismatch"),
                )
            else:
                try:
                    password_validation.validate_password(first, self.user)
                except ValidationError as exc:
                    self.add_error("new_password1", exc)
        return data


class ResetCodeForm(NewPasswordForm):
    """The code from the e-mail and the new password, twice. The rules that need the
    account (not like its name or address) are checked by the flow once the code is right."""

    code = CodeField(
        digits=8,
        label=_("Code from the e-mail"),
        error_messages={"required": _("Enter the code we e-mailed to you.")},
    )
    field_order = ["code", "new_password1", "new_password2"]


class PhoneForm(forms.Form):
    """The profile's phone number, asked before 2FA is turned on when there is none."""

    phone = forms.CharField(
        label=_("Phone number"),
        max_length=24,
        error_messages={
            "required": _("Enter a phone number, or continue without one."),
            "max_length": _("This phone number is too long."),
        },
        help_text=_("In international form, e.g. +33123456789."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )

    def clean_phone(self) -> str:
        phone = normalise_phone(str(self.cleaned_data["phone"]))
        phone_validator(phone)
        return phone


def normalise_phone(text: str) -> str:
    """A phone number as dialled: people type spaces, dots, dashes and brackets between
    the groups (re.ASCII: other scripts' spaces are not separators here)."""
    return re.sub(r"[\s.\-()]", "", text.strip(), flags=re.ASCII)


class NoticeEmailForm(forms.Form):
    """A second address for security notices: another than the sign-in address."""

    email = email_field(_("Second address for security notices"), autocomplete="email")

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user

    def clean_email(self) -> str:
        email = normal_email(str(self.cleaned_data["email"]))
        if email == self.user.email:
            raise forms.ValidationError(
                _("This is your sign-in address: choose another address."), code="same"
            )
        if email == self.user.notice_email:
            raise forms.ValidationError(
                _("This address already receives your security notices."), code="already"
            )
        return email


class NoticeEmailCodeForm(forms.Form):
    code = CodeField(
        digits=8,
        label=_("Code from the e-mail"),
        error_messages={"required": _("Enter the code we e-mailed to the second address.")},
    )
