"""The support desk, by what it does: its state machine (``state``), opening, cancelling and
the final disable (``requests``), the identity checks (``checks``) and what it refuses
(``errors``).

Callers use ``flows.<name>``; the names below are the desk's whole public surface.
"""

from keyfob.accounts.flows import end_sessions
from keyfob.support.flows.checks import (
    CODE_DIGITS,
    check_code,
    record_call,
    send_code,
    unseal_code,
    verify_document,
)
from keyfob.support.flows.errors import (
    AlreadyActive,
    BadCancelLink,
    CodeAlreadyUsed,
    CodeBurnt,
    CodeExpired,
    DocumentAlreadyVerified,
    DocumentNotRequired,
    FourEyes,
    NoCode,
    NotEnrolled,
    NotFound,
    OwnAccount,
    SupportError,
    WrongCode,
    WrongState,
)
from keyfob.support.flows.requests import (
    active_request,
    cancel,
    cancel_link_path,
    disable,
    open_request,
    request_from_link,
)
from keyfob.support.flows.state import (
    CHECK_STEPS,
    TRANSITIONS,
    checkers,
    hand_off,
    may_disable,
    move,
    waiting_for,
)

__all__ = [
    "CHECK_STEPS",
    "CODE_DIGITS",
    "TRANSITIONS",
    "AlreadyActive",
    "BadCancelLink",
    "CodeAlreadyUsed",
    "CodeBurnt",
    "CodeExpired",
    "DocumentAlreadyVerified",
    "DocumentNotRequired",
    "FourEyes",
    "NoCode",
    "NotEnrolled",
    "NotFound",
    "OwnAccount",
    "SupportError",
    "WrongCode",
    "WrongState",
    "active_request",
    "cancel",
    "cancel_link_path",
    "check_code",
    "checkers",
    "disable",
    "end_sessions",
    "hand_off",
    "may_disable",
    "move",
    "open_request",
    "record_call",
    "request_from_link",
    "send_code",
    "unseal_code",
    "verify_document",
    "waiting_for",
]
