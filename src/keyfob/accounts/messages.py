"""What the account pages (profile, e-mail change, password reset) tell a person whose
request was refused: one table, looked up by the error's ``code`` (KeyfobError.code), as
the two-factor pages and the support desk do."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from keyfob.accounts.errors import WrongEmailCode, WrongResetCode
from keyfob.accounts.text import wait_text
from keyfob.otp import KeyfobError, Throttled


def _wrong_code(exc: KeyfobError) -> str:
    left = exc.left if isinstance(exc, WrongEmailCode | WrongResetCode) else 0
    return ngettext(
        "That is not the code we sent. %(left)d try left.",
        "That is not the code we sent. %(left)d tries left.",
        left,
    ) % {"left": left}


def _too_many_requests(exc: KeyfobError) -> str:
    wait = exc.retry_after if isinstance(exc, Throttled) else 0
    return _("Too many requests. Try again in %(wait)s.") % {"wait": wait_text(wait)}


# By the error's code; every code the account pages can meet is here.
REFUSALS: dict[str, Callable[[KeyfobError], str]] = {
    "reauth_required": lambda exc: _(
        "Confirm it is you to change the phone number or the account kind."
    ),
    "email_limit": lambda exc: _(
        "You have asked for too many confirmation e-mails today. Try again tomorrow."
    ),
    "wrong_email_code": _wrong_code,
    "email_change_lost": lambda exc: _("Too many wrong codes. Ask for a new one."),
    "email_taken": lambda exc: _("This address cannot be used."),
    "wrong_reset_code": _wrong_code,
    "reset_lost": lambda exc: _(
        "This code no longer works (too many tries, or too late). Ask for a new one."
    ),
    "throttled": _too_many_requests,
}

# Refusals the page shows beside the field typed (the code), not as a message on the page
# it sends the person back to.
FIELD_REFUSALS = frozenset({"wrong_email_code", "wrong_reset_code"})


def refusal(exc: KeyfobError) -> str:
    """What to tell the person whose request was refused."""
    found = REFUSALS.get(exc.code)
    return found(exc) if found is not None else _("This step is not possible now.")
