"""What the teams' notices compute when rendered: the invitation's code (unsealed from the
outbox, '' once spent) and a rule's words in the notice's language."""

from __future__ import annotations

from typing import Any

from django import template

from keyfob.core import mailedcodes
from keyfob.teams import flows
from keyfob.teams.models import Rule

register = template.Library()


@register.simple_tag
def invitation_code(params: dict[str, Any]) -> str:
    """The invitation's code, grouped by four for reading; '' once it is spent."""
    return mailedcodes.spaced(flows.unseal_invitation_code(params))


@register.filter
def team_rule(value: str) -> str:
    """A rule's label in the notice's language (the outbox keeps the value)."""
    return str(dict(Rule.choices).get(value, value))
