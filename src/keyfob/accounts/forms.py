"""Forms validate input and say clearly what is wrong; they change nothing themselves."""

from __future__ import annotations

import zoneinfo
from typing import TYPE_CHECKING

from django import forms
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.models import Language, User

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
    email = email_field(_("Email"), autocomplete="username", autofocus=True)
    password = password_field()


class ProfileForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = ["display_name", "phone", "kind", "language", "time_zone"]
        labels = {
            "display_name": _("Name"),
            "phone": _("Phone number"),
            "kind": _("Account kind"),
            "language": _("Language"),
            "time_zone": _("Time zone"),
        }
        help_texts = {
            "phone": _(
                "In international form, e.g. +33123456789. Support calls this number "
                "before turning off two-factor authentication for you."
            ),
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        language = self.fields["language"]
        assert isinstance(language, forms.TypedChoiceField)
        language.choices = [("", _("Browser's language")), *Language.choices]
        self.fields["time_zone"] = forms.ChoiceField(
            label=_("Time zone"),
            choices=[(z, z.replace("_", " ")) for z in TIME_ZONES],
            help_text=_("Times on your Security page and in notices are shown in this zone."),
        )


class PasswordCheckForm(forms.Form):
    """The current password, asked again before a sensitive change."""

    password = password_field()


class EmailChangeForm(forms.Form):
    email = email_field(_("New e-mail address"), autocomplete="email")

    def __init__(self, *args: object, user: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = user

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip().lower()
        if email == self.user.email:
            raise forms.ValidationError(_("This is already your address."), code="same")
        if User.objects.filter(email__iexact=email).exists():
            # Says no more than that this address cannot be used here.
            raise forms.ValidationError(_("This address cannot be used."), code="taken")
        return email
