"""Throttling per account, shared, atomic; reset only by a right code."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from keyfob.audit.events import Context
from keyfob.core import clock, throttle
from keyfob.core.models import Throttle
from keyfob.otp import InvalidCode, Throttled
from keyfob.twofactor import flows
from tests.conftest import Enrolled, password_step

pytestmark = pytest.mark.django_db

CTX = Context()


def wrong(enrolled: Enrolled) -> str:
    right = enrolled.code()
    return "000000" if right != "000000" else "111111"


def fail(enrolled: Enrolled, times: int) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCode):
            flows.verify_code(enrolled.user, wrong(enrolled), CTX)


def test_five_wrong_codes_then_even_the_right_one_waits(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    fail(user_with_totp, 5)
    with pytest.raises(Throttled) as caught:
        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
    assert caught.value.retry_after == pytest.approx(30)
    with clock.frozen(frozen_time + 31):
        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
    row = Throttle.objects.get(scope="code", key=str(user_with_totp.user.pk))
    assert row.consecutive == 0 and row.locked_until is None


def test_the_delay_doubles_and_stops_at_fifteen_minutes() -> None:
    delays = [throttle.CODE.delay(n).total_seconds() for n in range(3, 13)]
    assert delays == [0, 0, 30, 60, 120, 240, 480, 900, 900, 900]


def test_a_wrong_code_after_the_wait_doubles_it(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    fail(user_with_totp, 5)
    with clock.frozen(frozen_time + 31):
        fail(user_with_totp, 1)
        with pytest.raises(Throttled) as caught:
            flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
    assert caught.value.retry_after == pytest.approx(60)


def test_never_more_than_100_wrong_codes_in_24_hours(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    at = frozen_time
    counted = 0
    for _ in range(400):  # bounded: every pass either counts a failure or waits out a delay
        with clock.frozen(at):
            try:
                flows.verify_code(user_with_totp.user, wrong(user_with_totp), CTX)
            except Throttled as exc:
                if exc.retry_after > 900:
                    break
                at += exc.retry_after + 1
            except InvalidCode:
                counted += 1
                if counted % 5 == 0 and counted < 100:
                    # A right code now and then resets the delay, but not the daily count.
                    at += 901
                    with clock.frozen(at):
                        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
                    at += 30
    assert counted == 100
    with clock.frozen(at), pytest.raises(Throttled) as caught:
        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
    assert caught.value.retry_after > 900


def test_throttle_message_says_when_to_retry(
    pending_client: Client, user_with_totp: Enrolled
) -> None:
    for _ in range(5):
        pending_client.post("/login/code/", {"code": wrong(user_with_totp)})
    response = pending_client.post("/login/code/", {"code": user_with_totp.code()})
    assert "Too many failed attempts. Try again in 30 seconds." in response.content.decode()
    assert "_auth_user_id" not in pending_client.session


def test_the_password_step_is_throttled_per_account(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        password_step(client, password="wrong password")
    response = password_step(client)
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_password_step_is_throttled_per_address(client: Client, user) -> None:  # type: ignore[no-untyped-def]
    for n in range(20):
        password_step(client, email=f"guess{n}@example.com", password="wrong password")
    response = password_step(client)
    assert "Too many failed sign-ins" in response.content.decode()
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert password_step(other).status_code == 302


def test_wrong_codes_after_a_right_password_warn_by_mail_at_most_hourly(
    pending_client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    from keyfob.audit.models import NoticeKind, Outbox

    def warnings() -> int:
        return Outbox.objects.filter(kind=NoticeKind.WRONG_CODES).count()

    pending_client.post("/login/code/", {"code": wrong(user_with_totp)})
    pending_client.post("/login/code/", {"code": wrong(user_with_totp)})
    assert warnings() == 0  # a typo or two is not worth a fright
    pending_client.post("/login/code/", {"code": wrong(user_with_totp)})
    assert warnings() == 1
    pending_client.post("/login/code/", {"code": wrong(user_with_totp)})
    assert warnings() == 1
    with clock.frozen(frozen_time + 3601):
        password_step(pending_client)
        for _ in range(3):
            pending_client.post("/login/code/", {"code": wrong(user_with_totp)})
    assert warnings() == 2


def test_a_right_code_on_a_clean_account_takes_no_lock_and_leaves_the_row_alone(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    """No failure on record: the compare-and-set alone decides (see _consume_unthrottled);
    the throttle row (made when the setup code was checked) is not touched."""
    rows = Throttle.objects.filter(key=str(user_with_totp.user.pk))
    before = list(rows.values())
    flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
    assert list(rows.values()) == before


@pytest.mark.parametrize(
    ("consecutive", "locked", "failed_hours_ago"),
    [(1, False, 0.0), (0, True, 30.0), (0, False, 23.0)],
    ids=["a failure in a row", "a wait on record", "a failure within the day"],
)
def test_a_right_code_with_any_failure_on_record_goes_through_the_lock(
    user_with_totp: Enrolled,
    frozen_time: float,
    consecutive: int,
    locked: bool,
    failed_hours_ago: float,
) -> None:
    """Then the locked path checks the wait and clears the count; a failure over a day old
    with nothing in a row is no longer on record."""
    key = str(user_with_totp.user.pk)
    row, _ = Throttle.objects.update_or_create(
        scope="code", key=key, defaults={"consecutive": consecutive}
    )
    before = clock.now() - throttle.DAY
    Throttle.objects.filter(pk=row.pk).update(
        locked_until=clock.now() - throttle.DAY if locked else None,
        last_failure_at=clock.now() - throttle.DAY * (failed_hours_ago / 24),
        updated=before,
    )
    with CaptureQueriesContext(connection) as queries:
        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
    row.refresh_from_db()
    assert (row.consecutive, row.locked_until) == (0, None)
    # The locked path read the row it locked; the unlocked one would not have.
    assert _throttle_reads(queries) == 1


def test_a_failure_over_a_day_old_is_off_the_record(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    key = str(user_with_totp.user.pk)
    before = clock.now() - throttle.DAY * 2
    Throttle.objects.update_or_create(
        scope="code",
        key=key,
        defaults={"last_failure_at": before, "updated": before, "consecutive": 0},
    )
    with CaptureQueriesContext(connection) as queries:
        flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
    assert _throttle_reads(queries) == 0  # not locked
    assert Throttle.objects.get(key=key).updated == before  # not touched


def _throttle_reads(queries: CaptureQueriesContext) -> int:
    """How many statements read the throttle table on their own (not as the guard inside
    the compare-and-set's UPDATE)."""
    table = connection.ops.quote_name(Throttle._meta.db_table)
    return sum(
        1
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith("SELECT") and table in query["sql"]
    )


def test_pruning_deletes_the_failures_over_a_day_old_and_keeps_the_others(
    user_with_totp: Enrolled,
) -> None:
    """A failure's time is no longer deleted by the request that counts the next one (issue
    23): the hourly prune does it, and a failure of the last day stays counted."""
    with clock.frozen(clock.time() - 2 * 86400):
        fail(user_with_totp, 2)
    fail(user_with_totp, 1)
    row = Throttle.objects.get(scope="code", key=str(user_with_totp.user.pk))
    assert row.failures.count() == 3
    assert throttle.peek(throttle.CODE, row.key).recent == 1
    throttle.prune_idle()
    assert row.failures.count() == 1


def test_the_daily_cap_holds_on_the_lock_free_path(user_with_totp: Enrolled) -> None:
    """A hundred failures in a day refuse the next attempt, whichever path counted them."""
    start = clock.time()
    for n in range(throttle.CODE.daily):
        # Spaced out, with a right code now and then: no wait ever applies.
        with clock.frozen(start + n * 60):
            if n % 4 == 3:
                flows.verify_code(user_with_totp.user, user_with_totp.code(), CTX)
            fail(user_with_totp, 1)
    with clock.frozen(start + throttle.CODE.daily * 60), pytest.raises(Throttled):
        flows.verify_code(user_with_totp.user, wrong(user_with_totp), CTX)
    key = str(user_with_totp.user.pk)
    assert throttle.peek(throttle.CODE, key).recent == throttle.CODE.daily
