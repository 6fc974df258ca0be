"""The support desk's forms: they validate and say what is wrong; flows do the work."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.forms import CodeField, email_field
from keyfob.accounts.models import phone_validator
from keyfob.support.models import CallOutcome, Channel, Lost, State

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

NOTE_MAX = 1000


def _note(label: StrOrPromise, *, required: bool, help_text: StrOrPromise = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=NOTE_MAX,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={
            "required": _("Write a short note."),
            "max_length": _("Keep the note under %(limit_value)d characters."),
        },
    )


class CustomerRequestForm(forms.Form):
    """The customer's own request, opened after a right password."""

    message = _note(
        _("Anything support should know (optional)"),
        required=False,
        help_text=_("For example, when you can best be reached by phone."),
    )


class SearchForm(forms.Form):
    state = forms.ChoiceField(choices=State.choices, required=False)
    q = forms.CharField(label=_("E-mail address"), max_length=254, required=False)


class StaffOpenForm(forms.Form):
    """Staff open a request for a customer who wrote or called the support address."""

    email = forms.EmailField(
        label=_("Account's e-mail address"),
        max_length=254,
        error_messages={
            "required": _("Enter the account's e-mail address."),
            "invalid": _("Enter a valid e-mail address."),
        },
    )
    channel = forms.ChoiceField(
        label=_("How the customer asked"),
        choices=[(c.value, c.label) for c in Channel if c != Channel.SIGNIN],
        initial=Channel.EMAIL,
        error_messages={"required": _("Say how the customer asked.")},
    )
    note = _note(_("Note"), required=False)


class CallForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Outcome of the call"),
        choices=CallOutcome.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose the outcome of the call.")},
    )
    note = _note(_("Note"), required=False)


class DocumentForm(forms.Form):
    """One document of the list; which one is in the URL."""

    verified = forms.BooleanField(
        label=_("Received from the profile's e-mail address, and verified"),
        error_messages={"required": _("Tick the box once the document is received and verified.")},
    )
    note = _note(
        _("Note"),
        required=True,
        help_text=_("What you checked, for example the document's type and the name on it."),
    )


class CheckCodeForm(forms.Form):
    code = CodeField(
        digits=8,
        label=_("Code the customer read back"),
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "inputmode": "numeric", "spellcheck": "false"}
        ),
        error_messages={"required": _("Enter the code the customer read back.")},
    )


class DisableForm(forms.Form):
    reason = _note(
        _("Reason"),
        required=True,
        help_text=_("Kept on the request's timeline."),
    )


class CancelForm(forms.Form):
    reason = _note(_("Why cancel it?"), required=True)


class LostEmailForm(forms.Form):
    """ "I no longer have access to my e-mail address": which account, the new address, and
    what else was lost."""

    account = forms.CharField(
        label=_("The e-mail address you lost, or the phone number on your profile"),
        max_length=254,
        help_text=_(
            "The address you signed in with until now, or your phone number in "
            "international form, for example +33 6 12 34 56 78."
        ),
        error_messages={
            "required": _("Enter the address you lost, or the phone number on your profile."),
            "max_length": _("This is too long for an e-mail address or a phone number."),
        },
        widget=forms.TextInput(attrs={"autocomplete": "username", "spellcheck": "false"}),
    )
    new_email = email_field(_("Your new e-mail address"), autocomplete="email")
    lost = forms.ChoiceField(
        label=_("What else did you lose?"),
        choices=Lost.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Say whether you also lost your password or your authenticator."),
            "invalid_choice": _("Say whether you also lost your password or your authenticator."),
        },
    )

    def clean_account(self) -> str:
        typed = str(self.cleaned_data["account"]).strip()
        if "@" in typed:
            try:
                validate_email(typed)
            except ValidationError:
                raise ValidationError(
                    _("Enter a valid e-mail address, or a phone number."), code="invalid"
                ) from None
            return normal_email(typed)
        phone = re.sub(r"[\s.\-()]", "", typed, flags=re.ASCII)
        try:
            phone_validator(phone)
        except ValidationError:
            raise ValidationError(
                _(
                    "Enter a valid e-mail address, or a phone number in international form, "
                    "for example +33612345678."
                ),
                code="invalid",
            ) from None
        return phone

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        account, new = data.get("account"), data.get("new_email")
        if isinstance(account, str) and isinstance(new, str) and normal_email(new) == account:
            self.add_error(
                "new_email",
                ValidationError(
                    _("Your new address must be another one than the address you lost."),
                    code="same",
                ),
            )
        return data


class LostEmailCodeForm(forms.Form):
    code = CodeField(
        digits=8,
        label=_("Code from the e-mail"),
        error_messages={"required": _("Enter the code we e-mailed to your new address.")},
    )


class ChangeAddressForm(forms.Form):
    reason = _note(
        _("Reason"),
        required=True,
        help_text=_("Kept on the request's timeline."),
    )
