"""Properties of verification: which step matches, replay refusal, window edges, junk."""

from __future__ import annotations

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from keyfob.otp import (
    drift_steps,
    hotp,
    time_step,
    totp,
    verify_hotp,
    verify_totp,
)

SECRETS = st.binary(min_size=16, max_size=64)
# From the epoch to well past 2038 (and past 2106, where 32-bit unsigned time ends).
TIMES = st.floats(min_value=0, max_value=2**34, allow_nan=False, allow_infinity=False)
PERIODS = st.sampled_from([30, 60, 1, 15])
DIGITS = st.sampled_from([6, 7, 8])
ALGORITHMS = st.sampled_from(["SHA1", "SHA256", "SHA512"])
FAST = settings(max_examples=60, deadline=None)
SECRET = b"0123456789abcdef0123"
AT = 1_700_000_000.0


@FAST
@given(SECRETS, TIMES, PERIODS, DIGITS, ALGORITHMS)
def test_a_fresh_code_verifies_at_its_own_step(
    secret: bytes, at: float, period: int, digits: int, algorithm: str
) -> None:
    code = totp(secret, at, period=period, digits=digits, algorithm=algorithm)
    kw = {"period": period, "digits": digits, "algorithm": algorithm}
    step = time_step(at, period=period)
    assert verify_totp(secret, code, at, window=0, **kw) == step
    # The step T is just floor(at / period) when t0 = 0.
    assert step * period <= at < (step + 1) * period
    # Typed with grouping spaces, as phones show it.
    spaced = f"{code[:3]} {code[3:]}"
    assert verify_totp(secret, spaced, at, window=0, **kw) == step


@FAST
@given(SECRETS, TIMES, st.integers(min_value=0, max_value=10), st.data())
def test_window_edges_are_exact(secret: bytes, at: float, window: int, data: st.DataObject) -> None:
    step = time_step(at)
    offset = data.draw(st.integers(min_value=-window - 3, max_value=window + 3), label="offset")
    assume(step + offset >= 0)
    code = hotp(secret, step + offset)
    # A code from another step could coincide with one inside the window (1 in 10**6 per
    # step); that is not what this property is about.
    others = {hotp(secret, s) for s in range(max(0, step - window), step + window + 1)}
    inside = abs(offset) <= window
    assume(inside or code not in others)
    matched = verify_totp(secret, code, at, window=window)
    if inside:
        # The highest matching step is returned; a coincidence can only push it higher.
        assert matched is not None
        assert matched >= step + offset
    else:
        assert matched is None


def test_window_edges_by_example() -> None:
    step = time_step(AT)
    for window in (0, 1, 2, 10):
        for offset in range(-window - 1, window + 2):
            code = hotp(SECRET, step + offset)
            expected = step + offset if abs(offset) <= window else None
            assert verify_totp(SECRET, code, AT, window=window) == expected, (window, offset)


@FAST
@given(
    SECRETS, TIMES, st.integers(min_value=-3, max_value=3), st.integers(min_value=-3, max_value=3)
)
def test_nothing_at_or_below_last_step_is_accepted(
    secret: bytes, at: float, offset: int, last_offset: int
) -> None:
    step = time_step(at)
    assume(step + offset >= 0)
    last_step = step + last_offset
    code = hotp(secret, step + offset)
    matched = verify_totp(secret, code, at, window=3, last_step=last_step)
    if matched is not None:
        assert matched > last_step
    if offset <= last_offset:
        # Unless the code coincides with a later step's code, it is refused.
        later = {hotp(secret, s) for s in range(max(step + offset + 1, last_step + 1), step + 4)}
        assert matched is None or code in later
    else:
        assert matched is not None and matched >= step + offset


def test_replay_of_the_same_code_is_refused() -> None:
    code = totp(SECRET, AT)
    first = verify_totp(SECRET, code, AT)
    assert first == time_step(AT)
    assert verify_totp(SECRET, code, AT, last_step=first) is None
    assert verify_totp(SECRET, code, AT + 30, last_step=first) is None


def test_steps_before_the_epoch_are_never_tried() -> None:
    # At step 0 with window 1, step -1 does not exist; no error, no wrap-around.
    code = hotp(SECRET, 0)
    assert verify_totp(SECRET, code, 5.0, window=1) == 0
    assert verify_totp(SECRET, hotp(SECRET, 1), 5.0, window=1) == 1
    assert verify_totp(SECRET, code, 5.0, window=1, last_step=0) is None


JUNK_CODES = [
    "",
    " ",
    "12345",
    "1234567",
    "12345\n",
    "123456\n",
    "\t123456",
    "+12345",
    "-12345",
    "12345.",
    "1e5000",
    "123_456",
    "١٢٣٤٥٦",  # Arabic-Indic digits: int() accepts them
    "１２３４５６",  # full-width digits: int() accepts them too
    "১২৩৪৫৬",  # Bengali digits
    "12345٦",
    "²³⁴⁵⁶⁷",  # superscripts: isdigit() is True for them
    "1" * 10_000,
    "1 " * 5_000,
    "\x00" * 6,
    "12345\x00",
    "abcdef",
    "0x1234",
]


def test_junk_codes_are_refused_quietly() -> None:
    for junk in JUNK_CODES:
        assert verify_totp(SECRET, junk, AT, window=10) is None, repr(junk)
        assert verify_hotp(SECRET, junk, 0, look_ahead=100) is None, repr(junk)
        assert drift_steps(SECRET, junk, AT) is None, repr(junk)
    for not_text in (None, 123456, b"123456", 123456.0, ["1", "2", "3", "4", "5", "6"]):
        assert verify_totp(SECRET, not_text, AT) is None  # type: ignore[arg-type]
        assert verify_hotp(SECRET, not_text, 0) is None  # type: ignore[arg-type]
        assert drift_steps(SECRET, not_text, AT) is None  # type: ignore[arg-type]


@FAST
@given(st.text(max_size=40) | st.text(alphabet="0123456789 ", max_size=12))
@example("1" * 10_000)
def test_any_text_as_a_code_never_raises(text: str) -> None:
    matched = verify_totp(SECRET, text, AT, window=1)
    compact = text.replace(" ", "")
    if matched is not None:
        assert len(compact) == 6 and all("0" <= ch <= "9" for ch in compact)


def test_str_subclass_is_read_as_text() -> None:
    class Code(str):
        pass

    assert verify_totp(SECRET, Code(totp(SECRET, AT)), AT) == time_step(AT)


@FAST
@given(SECRETS, TIMES, st.integers(min_value=-20, max_value=20))
def test_drift_steps_finds_the_offset(secret: bytes, at: float, offset: int) -> None:
    step = time_step(at)
    assume(step + offset >= 0)
    code = hotp(secret, step + offset)
    found = drift_steps(secret, code, at, max_steps=20)
    # The nearest offset wins: a coincidence can only give a smaller distance.
    assert found is not None
    assert abs(found) <= abs(offset)
    assert hotp(secret, step + found) == code


def test_drift_steps_reports_a_slow_phone() -> None:
    # A phone 4 minutes slow shows the code of 8 steps ago.
    code = totp(SECRET, AT - 240)
    assert drift_steps(SECRET, code, AT) == -8
    assert drift_steps(SECRET, totp(SECRET, AT + 300), AT) == 10
    assert drift_steps(SECRET, code, AT, max_steps=7) is None
    assert verify_totp(SECRET, code, AT) is None


@FAST
@given(SECRETS, st.integers(min_value=0, max_value=2**64 - 200), st.integers(0, 100), DIGITS)
def test_hotp_look_ahead(secret: bytes, counter: int, ahead: int, digits: int) -> None:
    code = hotp(secret, counter + ahead, digits=digits)
    matched = verify_hotp(secret, code, counter, look_ahead=100, digits=digits)
    assert matched is not None and matched >= counter + ahead
    # Consumed counters (below the next expected one) are never accepted.
    assert verify_hotp(secret, code, counter + ahead + 1, look_ahead=0, digits=digits) in (
        None,
        counter + ahead + 1,
    )


def test_hotp_look_ahead_edges() -> None:
    assert verify_hotp(SECRET, hotp(SECRET, 15), 5, look_ahead=10) == 15
    assert verify_hotp(SECRET, hotp(SECRET, 16), 5, look_ahead=10) is None
    assert verify_hotp(SECRET, hotp(SECRET, 4), 5, look_ahead=10) is None
    assert verify_hotp(SECRET, hotp(SECRET, 5), 5, look_ahead=0) == 5
    # The last counter there is.
    top = 2**64 - 1
    assert verify_hotp(SECRET, hotp(SECRET, top), top, look_ahead=10) == top
