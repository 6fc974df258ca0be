"""The right code refused because a fast phone's later code was used (issue 24): the flow
says so, with the seconds until a code works again; the same code twice stays "reused"."""

from __future__ import annotations

import pytest

from keyfob.audit.events import Context
from keyfob.core import clock
from keyfob.otp import CodeReused
from keyfob.twofactor import flows
from tests.conftest import Enrolled

CONTEXT = Context(address="192.0.2.9", user_agent="tests")


def test_a_right_code_after_a_later_one_says_how_long_to_wait(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    user, now = user_with_totp.user, frozen_time
    step_start = now - now % 30
    with clock.frozen(now):
        with pytest.raises(flows.ClockDrift):  # a phone 2½ minutes fast: 5 steps ahead
            flows.verify_code(user, user_with_totp.code(now + 150), CONTEXT)
        with pytest.raises(flows.LaterCodeUsed) as refused:
            flows.verify_code(user, user_with_totp.code(now), CONTEXT)
    # The 5 steps ahead and this one are spent: a code works again at the sixth.
    assert refused.value.seconds == step_start + 6 * 30 - now
    assert refused.value.code == "later_code_used"
    with clock.frozen(step_start + 6 * 30):
        flows.verify_code(user, user_with_totp.code(step_start + 6 * 30), CONTEXT)


def test_the_same_code_twice_is_only_reused(user_with_totp: Enrolled, frozen_time: float) -> None:
    with clock.frozen(frozen_time):
        code = user_with_totp.code(frozen_time)
        flows.verify_code(user_with_totp.user, code, CONTEXT)
        with pytest.raises(CodeReused) as refused:
            flows.verify_code(user_with_totp.user, code, CONTEXT)
    assert type(refused.value) is CodeReused
