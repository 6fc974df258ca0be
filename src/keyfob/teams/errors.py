"""What the teams flows refuse, each with a ``code`` the pages word
(:mod:`keyfob.teams.messages`). Nothing changed when one is raised, except that a wrong
invitation code counts a try."""

from __future__ import annotations

from keyfob.otp import KeyfobError


class TeamError(KeyfobError):
    code = "team_error"


class NotFound(TeamError):
    """No such grant or invitation for the person asking (another owner's, ended, spent)."""

    code = "team_not_found"


class SelfInvite(TeamError):
    """An owner cannot invite their own address, nor join their own account."""

    code = "self_invite"


class AlreadyMember(TeamError):
    """The address's account already acts for this owner's account."""

    code = "already_member"


class InviteLimit(TeamError):
    """The owner sent their day's invitations (``flows.INVITES_PER_DAY``)."""

    code = "invite_limit"


class BadGrant(TeamError):
    """Rights, logins, rule or grace days the owner cannot give (not in the operator's
    list, not the owner's logins, out of range)."""

    code = "bad_grant"


class InvitationLost(TeamError):
    """The invitation no longer works: used, withdrawn, declined, expired, or too many
    wrong codes."""

    code = "invitation_lost"


class NotYourInvitation(TeamError):
    """The invitation was sent to another address than the signed-in account's."""

    code = "not_your_invitation"


class WrongInvitationCode(TeamError):
    """Not the invitation's code; ``left`` tries remain."""

    code = "wrong_invitation_code"

    def __init__(self, left: int) -> None:
        super().__init__("wrong code")
        self.left = left
