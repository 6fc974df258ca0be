"""Forms validate input and say clearly what is wrong; they change nothing themselves."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.models import Language, User

TIME_ZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})

# Long enough for any real password, short enough that argon2 never hashes a 10 kB paste.
MAX_PASSWORD = 256


class LoginForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        error_messages={
            "required": _("Enter your e-mail address."),
            "invalid": _("Enter a valid e-mail address."),
            "max_length": _("This e-mail address is too long."),
        },
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("Password"),
        max_length=MAX_PASSWORD,
        strip=False,
        error_messages={
            "required": _("Enter your password."),
            "max_length": _("This password is too long."),
        },
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


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

    password = forms.CharField(
        label=_("Password"),
        max_length=MAX_PASSWORD,
        strip=False,
        error_messages={
            "required": _("Enter your password."),
            "max_length": _("This password is too long."),
        },
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class EmailChangeForm(forms.Form):
    email = forms.EmailField(
        label=_("New e-mail address"),
        max_length=254,
        error_messages={
            "required": _("Enter your e-mail address."),
            "invalid": _("Enter a valid e-mail address."),
            "max_length": _("This e-mail address is too long."),
        },
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

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
