"""The support desk, by what it does: its state machine (``state``), opening, cancelling and
the final disable (``requests``), the identity checks (``checks``), the request of a customer
who lost their mailbox and its change of address (``lostemail``), and what it refuses
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
    AddressTaken,
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
    WrongPurpose,
    WrongState,
)
from keyfob.support.flows.lostemail import (
    CLAIM_CODE_MINUTES,
    ClaimLost,
    WrongClaimCode,
    change_address,
    confirm_claim,
    pending_claim,
    start_claim,
    unseal_claim_code,
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
    "CLAIM_CODE_MINUTES",
    "CODE_DIGITS",
    "TRANSITIONS",
    "AddressTaken",
    "AlreadyActive",
    "BadCancelLink",
    "ClaimLost",
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
    "WrongClaimCode",
    "WrongCode",
    "WrongPurpose",
    "WrongState",
    "active_request",
    "cancel",
    "cancel_link_path",
    "change_address",
    "check_code",
    "checkers",
    "confirm_claim",
    "disable",
    "end_sessions",
    "hand_off",
    "may_disable",
    "move",
    "open_request",
    "pending_claim",
    "record_call",
    "request_from_link",
    "send_code",
    "start_claim",
    "unseal_claim_code",
    "unseal_code",
    "verify_document",
    "waiting_for",
]
