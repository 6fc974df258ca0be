"""How many statements a code check costs (README, "How sign-in works"), pinned on
committed transactions as in production (no test transaction around them).

Django counts a write transaction's ``BEGIN`` (SQLite's ``BEGIN IMMEDIATE``) and its
``COMMIT`` as statements: a write is those two around what it changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyfob.audit.events import Context
from keyfob.otp import InvalidCode
from keyfob.twofactor import flows
from tests.api.conftest import Api
from tests.conftest import Enrolled

pytestmark = pytest.mark.django_db(transaction=True)
CTX = Context(address="192.0.2.1", user_agent="test")


def test_a_portal_code_check_is_one_read_and_one_compare_and_set(
    user_with_totp: Enrolled, frozen_time: float, django_assert_num_queries: Any
) -> None:
    # Read the authenticator; then BEGIN, the compare-and-set (the throttle guard is a
    # subquery inside its UPDATE), COMMIT.
    with django_assert_num_queries(1 + 3):
        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)


def test_an_ssh_verify_is_three_reads_and_one_write_transaction(
    api: Api, linked: Enrolled, frozen_time: float, django_assert_num_queries: Any
) -> None:
    # The token's last use is written at most once a minute: not in the counted call.
    assert api.verify("nobody", "123456") == {"result": "unknown_login"}
    # Read the token; read the login's account (one join) and its confirmed authenticators
    # (issue 17: an account has several, so they are a second read, not a join); then
    # BEGIN, the compare-and-set, the sign-in event, COMMIT.
    with django_assert_num_queries(3 + 4):
        assert api.verify("alice", linked.code()) == {"result": "accepted"}


def test_a_wrong_code_goes_through_the_throttle_lock(
    user_with_totp: Enrolled, frozen_time: float, django_assert_max_num_queries: Any
) -> None:
    """Not pinned exactly, only bounded: the slow path is the rare one."""
    with django_assert_max_num_queries(15), pytest.raises(InvalidCode):
        flows.verify_code(user_with_totp.user, "000000", CTX)
