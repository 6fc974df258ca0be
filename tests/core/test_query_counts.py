"""How many statements a code check costs (README, "Performance"), pinned on committed
transactions as in production (no test transaction around them), on SQLite and PostgreSQL.

Django counts a write transaction's ``BEGIN`` (SQLite's ``BEGIN IMMEDIATE``) and its
``COMMIT`` as statements: a write is those two around what it changes. Each test first runs
the same path once, unmeasured: a statement compiled once per process (``core.compiled``) is
compiled on its first run, and the token's last use is written at most once a minute.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyfob.api import flows as api_flows
from keyfob.audit.events import Context
from keyfob.audit.models import Channel
from keyfob.core.models import Throttle
from keyfob.otp import InvalidCode, Throttled
from keyfob.twofactor import flows
from tests.api.conftest import Api
from tests.conftest import Enrolled, enrol, make_user

pytestmark = pytest.mark.django_db(transaction=True)
CTX = Context(address="192.0.2.1", user_agent="test")
# Read the token; read the account's apps through the login's link.
SSH_READS = 2
# BEGIN, the compare-and-set (the throttle guard is a subquery inside its UPDATE), the
# sign-in event, COMMIT.
RIGHT_WRITE = 4
# Read the throttle's counters (with its failures of the last day); then BEGIN, the
# throttle's compare-and-set (an INSERT of the row the first time, an UPDATE after), the
# failure's time, the event, COMMIT.
WRONG = 1 + 5


def other_account(email: str) -> Enrolled:
    user = make_user(email)
    return enrol(user)


def test_a_portal_code_check_is_one_read_and_one_compare_and_set(
    user_with_totp: Enrolled, frozen_time: float, django_assert_num_queries: Any
) -> None:
    warm = other_account("warm@example.com")
    flows.verify_code(warm.user, warm.code(), CTX)
    # Read the apps; then BEGIN, the compare-and-set, COMMIT.
    with django_assert_num_queries(1 + 3):
        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)


def test_a_portal_wrong_code_costs_what_a_right_one_does_and_its_failure(
    user_with_totp: Enrolled, frozen_time: float, django_assert_num_queries: Any
) -> None:
    warm = other_account("warm@example.com")
    for _ in range(2):  # the row's first failure, then a later one
        with pytest.raises(InvalidCode):
            flows.verify_code(warm.user, "000000", CTX)
    for _ in range(2):
        with django_assert_num_queries(1 + WRONG), pytest.raises(InvalidCode):
            flows.verify_code(user_with_totp.user, "000000", CTX)
    assert Throttle.objects.get(scope="code", key=str(user_with_totp.user.pk)).consecutive == 2


def test_an_ssh_verify_is_two_reads_and_one_write_transaction(
    api: Api, linked: Enrolled, frozen_time: float, django_assert_num_queries: Any
) -> None:
    warm = other_account("warm@example.com")
    flows_link(warm, "warm")
    assert api.verify("warm", warm.code()) == {"result": "accepted"}
    with django_assert_num_queries(SSH_READS + RIGHT_WRITE):
        assert api.verify("alice", linked.code()) == {"result": "accepted"}


def test_an_ssh_wrong_code_is_counted_and_recorded_without_the_lock(
    api: Api, linked: Enrolled, frozen_time: float, django_assert_num_queries: Any
) -> None:
    warm = other_account("warm@example.com")
    flows_link(warm, "warm")
    for _ in range(2):
        assert api.verify("warm", "000000") == {"result": "rejected"}
    for _ in range(2):  # the first failure makes the throttle's row; the second updates it
        with django_assert_num_queries(SSH_READS + WRONG):
            assert api.verify("alice", "000000") == {"result": "rejected"}
    assert Throttle.objects.get(scope="code", key=str(linked.user.pk)).consecutive == 2


def test_a_wrong_code_while_the_account_waits_goes_through_the_throttle_lock(
    user_with_totp: Enrolled, frozen_time: float, django_assert_max_num_queries: Any
) -> None:
    """Not pinned exactly, only bounded: the slow path is the rare one."""
    for _ in range(5):
        with pytest.raises(InvalidCode):
            flows.verify_code(user_with_totp.user, "000000", CTX)
    with django_assert_max_num_queries(15), pytest.raises(Throttled):
        flows.verify_code(user_with_totp.user, "000000", CTX)


def flows_link(account: Enrolled, login: str) -> None:
    api_flows.link(account.user, login, "web1", Context(channel=Channel.CLI))
