"""What the support desk's e-mail notices compute when they are rendered, not queued.

The outbox keeps facts only (:mod:`keyfob.audit.notices`): the cancel link is signed at
render time from the request's id, and the e-mailed check code is unsealed at render time
from the ciphertext the outbox holds (and which is wiped once the code is spent).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from keyfob.core import mailedcodes
from keyfob.support import flows
from keyfob.support.models import DocumentKind

register = template.Library()


@register.simple_tag
def support_cancel_url(params: dict[str, Any]) -> str:
    """The absolute link that cancels the notice's request."""
    path = flows.cancel_link_path(int(params["request"]), int(params["issued"]))
    return f"{str(params.get('site', '')).rstrip('/')}{path}"


@register.simple_tag
def support_check_code(params: dict[str, Any]) -> str:
    """The code, grouped by four for reading aloud; '' once it is spent."""
    return mailedcodes.spaced(flows.unseal_code(params))


@register.simple_tag
def support_documents(params: dict[str, Any]) -> list[str]:
    """The names of the documents a request asks for, in the notice's language."""
    kinds = params.get("documents") or []
    return [str(DocumentKind(kind).label) for kind in kinds if kind in DocumentKind.values]


@register.simple_tag
def support_request_url(params: dict[str, Any]) -> str:
    """The absolute link to the notice's request on the support desk ('' without a site)."""
    site = str(params.get("site", "")).rstrip("/")
    return f"{site}{reverse('support:detail', args=[int(params['request'])])}" if site else ""


@register.simple_tag
def lost_email_code(params: dict[str, Any]) -> str:
    """The code confirming a new address for a change of address, grouped by four; ''
    once it is spent."""
    return mailedcodes.spaced(flows.unseal_claim_code(params))
