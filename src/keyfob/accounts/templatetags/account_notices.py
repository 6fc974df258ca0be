"""What the e-mail confirmation and password reset notices compute when rendered, not
queued: the code, unsealed from the ciphertext the outbox holds (dropped once the code is
spent or sent)."""

from __future__ import annotations

from typing import Any

from django import template

from keyfob.accounts import flows, notice_address
from keyfob.accounts.models import AccountKind
from keyfob.core import mailedcodes

register = template.Library()


@register.simple_tag
def email_confirm_code(params: dict[str, Any]) -> str:
    """The code, grouped by four for reading; '' once it is spent."""
    return mailedcodes.spaced(flows.unseal_email_code(params))


@register.filter
def account_kind(value: str) -> str:
    """An account kind's label in the notice's language (the outbox keeps the value)."""
    return str(dict(AccountKind.choices).get(value, value))


@register.simple_tag
def password_reset_code(params: dict[str, Any]) -> str:
    """The password reset code, grouped by four; '' once it is spent or replaced."""
    return mailedcodes.spaced(flows.unseal_reset_code(params))


@register.simple_tag
def notice_email_code(params: dict[str, Any]) -> str:
    """The code confirming a second address for security notices, grouped by four; ''
    once it is spent."""
    return mailedcodes.spaced(notice_address.unseal_notice_code(params))
