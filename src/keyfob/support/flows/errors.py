"""What the support desk refuses, each with a code the staff page words."""

from __future__ import annotations

from keyfob.otp import KeyfobError


class SupportError(KeyfobError):
    """A support step that cannot be done; nothing was changed."""

    code = "support_error"


class WrongState(SupportError):
    """The request is not (or no longer) in a state where this step can be done."""

    code = "wrong_state"

    def __init__(self, state: str, step: str) -> None:
        super().__init__(f"cannot {step} a request in state {state}")
        self.state = state
        self.step = step


class NotFound(SupportError):
    """No such request (or account)."""

    code = "not_found"


class OwnAccount(SupportError):
    """A staff member tried to act on a request for their own account."""

    code = "own_account"


class FourEyes(SupportError):
    """The staff member recorded checks on this request, so someone else must disable."""

    code = "four_eyes"


class NotEnrolled(SupportError):
    """The account does not use 2FA: there is nothing for support to turn off."""

    code = "not_enrolled"


class AlreadyActive(SupportError):
    """The account already has a request in progress."""

    code = "already_active"

    def __init__(self, request_id: int | None) -> None:
        super().__init__("the account already has a request in progress")
        self.request_id = request_id


class DocumentNotRequired(SupportError):
    """That document is not one asked for this kind of account."""

    code = "document_not_required"


class DocumentAlreadyVerified(SupportError):
    """That document was already marked verified on this request."""

    code = "document_already_verified"


class NoCode(SupportError):
    """No code was e-mailed for this request yet."""

    code = "no_code"


class CodeExpired(SupportError):
    """The last code e-mailed is older than its lifetime: send a new one."""

    code = "code_expired"


class CodeBurnt(SupportError):
    """The last code e-mailed took too many wrong tries (or was replaced): send a new one."""

    code = "code_burnt"


class CodeAlreadyUsed(SupportError):
    """The last code e-mailed was already read back correctly."""

    code = "code_already_used"


class WrongCode(SupportError):
    """Not the code e-mailed; ``left`` tries remain before it burns."""

    code = "wrong_code"

    def __init__(self, left: int) -> None:
        super().__init__("wrong code")
        self.left = left


class BadCancelLink(SupportError):
    """The cancel link is not one of ours, or too old."""

    code = "bad_cancel_link"


class WrongPurpose(SupportError):
    """The step belongs to another kind of request (turning 2FA off, or changing the
    sign-in address)."""

    code = "wrong_purpose"


class AddressTaken(SupportError):
    """Another account has the request's new address now: the address cannot change."""

    code = "address_taken"

    def __init__(self, email: str) -> None:
        super().__init__("another account has this address")
        self.email = email
