"""What the accounts flows refuse, each with a ``code`` the pages word
(:mod:`keyfob.accounts.messages`). Raised by :mod:`keyfob.accounts.flows`, which also
names them (``flows.ResetLost``…)."""

from __future__ import annotations

from keyfob.otp import KeyfobError


class AccountError(KeyfobError):
    """A change to an account, or a way back into it, that was refused; nothing changed
    but what the subclass says (a wrong code's try is counted)."""

    code = "account_error"


class InvalidCredentials(AccountError):
    """The e-mail and password do not match an active account (which one is not said)."""

    code = "invalid_credentials"


class ReauthRequired(AccountError):
    """A sensitive change was asked for without a recent re-authentication."""

    code = "reauth_required"


class EmailChangeLost(AccountError):
    """No change to confirm: none started, it expired, or too many wrong codes."""

    code = "email_change_lost"


class WrongEmailCode(AccountError):
    """Not the code e-mailed to the new address; ``left`` tries remain."""

    code = "wrong_email_code"

    def __init__(self, left: int) -> None:
        super().__init__("wrong code")
        self.left = left


class EmailTaken(AccountError):
    """Another account has the address (said only to whoever typed the code sent to it)."""

    code = "email_taken"


class EmailChangeLimit(AccountError):
    """The account sent its day's confirmation mails (``flows.EMAIL_CODES_PER_DAY``)."""

    code = "email_limit"


class ResetLost(AccountError):
    """No reset to finish: none asked, expired, used, or too many wrong codes."""

    code = "reset_lost"


class WrongResetCode(AccountError):
    """Not the reset code e-mailed; ``left`` tries remain."""

    code = "wrong_reset_code"

    def __init__(self, left: int) -> None:
        super().__init__("wrong code")
        self.left = left
