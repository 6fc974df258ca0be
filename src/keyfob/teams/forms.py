"""The Team page's forms: they say clearly what is wrong (each error with a code) and
change nothing; the flows in :mod:`keyfob.teams.flows` check again."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.forms import CodeField, email_field
from keyfob.accounts.models import User
from keyfob.teams.app_settings import app_settings
from keyfob.teams.flows import INVITE_CODE_DIGITS, MAX_GRACE_DAYS
from keyfob.teams.logins import owner_logins
from keyfob.teams.models import Rule


def login_value(login: str, server: str) -> str:
    """A login's value in a form: unambiguous whatever characters the names hold."""
    return json.dumps([login, server])


def login_label(login: str, server: str) -> str:
    return f"{login} @ {server}"


class TermsForm(forms.Form):
    """Rights, SSH logins and rule of a grant, from the lists ``owner`` can give."""

    rights = forms.MultipleChoiceField(
        label=_("Rights"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("Choose rights from the list.")},
    )
    logins = forms.MultipleChoiceField(
        label=_("SSH logins"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Logins linked to your account; the member logs in with their own key."),
        error_messages={"invalid_choice": _("Choose SSH logins from the list.")},
    )
    rule = forms.ChoiceField(
        label=_("Two-factor rule"),
        choices=Rule.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "What the member's sign-in must use for this grant to give anything. "
            "Until it does, the grant waits."
        ),
        error_messages={
            "required": _("Choose a rule."),
            "invalid_choice": _("Choose a rule from the list."),
        },
    )

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        rights = self.fields["rights"]
        assert isinstance(rights, forms.MultipleChoiceField)
        rights.choices = [(r, r) for r in app_settings.rights]
        self._logins = {login_value(*pair): pair for pair in owner_logins(owner)}
        logins = self.fields["logins"]
        assert isinstance(logins, forms.MultipleChoiceField)
        logins.choices = [(value, login_label(*pair)) for value, pair in self._logins.items()]
        if not self._logins:
            logins.help_text = _("Your account has no SSH logins linked to a server.")

    def clean_logins(self) -> list[list[str]]:
        return [list(self._logins[value]) for value in self.cleaned_data.get("logins") or []]


def grace_field() -> forms.IntegerField:
    return forms.IntegerField(
        label=_("Grace period (days)"),
        min_value=0,
        max_value=MAX_GRACE_DAYS,
        help_text=_("Days the member has to meet the rule (reminders are e-mailed); 0 for none."),
        error_messages={
            "required": _("Enter a number of days (0 for none)."),
            "invalid": _("Enter a whole number of days."),
            "min_value": _("Enter 0 days or more."),
            "max_value": _("Enter at most %(limit_value)s days."),
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


class InviteForm(TermsForm):
    email = email_field(_("E-mail address"), autocomplete="off", autofocus=True)
    grace_days = grace_field()

    field_order = ["email", "rights", "logins", "rule", "grace_days"]

    def clean_email(self) -> str:
        email = normal_email(str(self.cleaned_data.get("email") or ""))
        if email == normal_email(self.owner.email):
            raise ValidationError(
                _("This is your own address: invite someone else."), code="self_invite"
            )
        return email


class GrantForm(TermsForm):
    """A member's grant, changed by its owner."""


class DefaultsForm(forms.Form):
    rule = forms.ChoiceField(
        label=_("Default rule for new members"),
        choices=Rule.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Choose a rule."),
            "invalid_choice": _("Choose a rule from the list."),
        },
    )
    grace_days = grace_field()


class InvitationCodeForm(forms.Form):
    code = CodeField(
        digits=INVITE_CODE_DIGITS,
        label=_("Code from the invitation"),
        error_messages={"required": _("Enter the code from the invitation e-mail.")},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": r"[0-9 ]*",
                "spellcheck": "false",
            }
        ),
    )
