"""What the Team page tells a person whose request was refused: one table, looked up by
the error's ``code`` (as accounts/messages.py does)."""

from __future__ import annotations

from collections.abc import Callable

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from keyfob.otp import KeyfobError
from keyfob.teams.errors import WrongInvitationCode


def _wrong_code(exc: KeyfobError) -> str:
    left = exc.left if isinstance(exc, WrongInvitationCode) else 0
    return ngettext(
        "That is not the invitation's code. %(left)d try left.",
        "That is not the invitation's code. %(left)d tries left.",
        left,
    ) % {"left": left}


REFUSALS: dict[str, Callable[[KeyfobError], str]] = {
    "reauth_required": lambda exc: _("Confirm it is you to change your team."),
    "team_not_found": lambda exc: _("This is no longer there: nothing was changed."),
    "self_invite": lambda exc: _("This is your own address: invite someone else."),
    "already_member": lambda exc: _("This person already acts for this account."),
    "invite_limit": lambda exc: _("You have sent too many invitations today. Try again tomorrow."),
    "bad_grant": lambda exc: _(
        "Some of the rights, logins or rule cannot be given. Nothing was changed."
    ),
    "invitation_lost": lambda exc: _(
        "This invitation no longer works (used, withdrawn, expired, or too many wrong "
        "codes). Ask the account's owner for a new one."
    ),
    "not_your_invitation": lambda exc: _(
        "This invitation was sent to another address: only that address's account can accept it."
    ),
    "wrong_invitation_code": _wrong_code,
}

# Shown beside the code field rather than as a message on the Team page.
FIELD_REFUSALS = frozenset({"wrong_invitation_code"})


def refusal(exc: KeyfobError) -> str:
    found = REFUSALS.get(exc.code)
    return found(exc) if found is not None else _("This step is not possible now.")
