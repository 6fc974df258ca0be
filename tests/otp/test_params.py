"""Bad parameters fail fast with ParameterError; they never produce a wrong code."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from keyfob import otp
from keyfob.otp import (
    CodeReused,
    InvalidCode,
    InvalidKeyURI,
    InvalidSecret,
    KeyfobError,
    ParameterError,
    Throttled,
    drift_steps,
    hotp,
    time_step,
    totp,
    verify_hotp,
    verify_totp,
)

SECRET = b"0123456789abcdef0123"
AT = 1_700_000_000.0

# Every function that takes the shared parameters, called with the given overrides.
CALLS: dict[str, Callable[..., Any]] = {
    "hotp": lambda secret=SECRET, **kw: hotp(secret, 0, **kw),
    "totp": lambda secret=SECRET, **kw: totp(secret, AT, **kw),
    "verify_totp": lambda secret=SECRET, **kw: verify_totp(secret, "123456", AT, **kw),
    "verify_hotp": lambda secret=SECRET, **kw: verify_hotp(secret, "123456", 0, **kw),
    "drift_steps": lambda secret=SECRET, **kw: drift_steps(secret, "123456", AT, **kw),
}

BAD_SHARED: list[dict[str, Any]] = [
    {"digits": 5},
    {"digits": 9},
    {"digits": 0},
    {"digits": -6},
    {"digits": 6.0},
    {"digits": "6"},
    {"digits": True},
    {"algorithm": "MD5"},
    {"algorithm": "sha1"},
    {"algorithm": "SHA-1"},
    {"algorithm": "SHA384"},
    {"algorithm": ""},
    {"algorithm": None},
    {"secret": b"0123456789abcde"},  # 15 bytes
    {"secret": b""},
    {"secret": "0123456789abcdef0123"},
    {"secret": None},
    {"secret": bytearray(SECRET)},
]


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("bad", BAD_SHARED, ids=repr)
def test_bad_shared_parameters(name: str, bad: dict[str, Any]) -> None:
    with pytest.raises(ParameterError):
        CALLS[name](**bad)


BAD_TIME: list[dict[str, Any]] = [
    {"period": 0},
    {"period": -30},
    {"period": 30.0},
    {"period": None},
    {"t0": -1},
    {"t0": 1.5},
    {"t0": AT + 1},  # at before t0
]


@pytest.mark.parametrize("name", ["totp", "verify_totp", "drift_steps"])
@pytest.mark.parametrize("bad", BAD_TIME, ids=repr)
def test_bad_time_parameters(name: str, bad: dict[str, Any]) -> None:
    with pytest.raises(ParameterError):
        CALLS[name](**bad)


@pytest.mark.parametrize(
    "at",
    [-1, -0.5, float("nan"), float("inf"), float("-inf"), 2.0**63, 2**70, "1700000000", None, True],
)
def test_bad_times(at: Any) -> None:
    for call in (
        lambda: time_step(at),
        lambda: totp(SECRET, at),
        lambda: verify_totp(SECRET, "123456", at),
        lambda: drift_steps(SECRET, "123456", at),
    ):
        with pytest.raises(ParameterError):
            call()


def test_time_step_edges() -> None:
    assert time_step(0) == 0
    assert time_step(29.999) == 0
    assert time_step(30) == 1
    assert time_step(59, period=60) == 0
    assert time_step(100, t0=100) == 0
    assert time_step(99.5, t0=99) == 0
    assert time_step(2**62) == 2**62 // 30


@pytest.mark.parametrize("counter", [-1, 2**64, 1.0, "0", None, True])
def test_bad_counters(counter: Any) -> None:
    with pytest.raises(ParameterError):
        hotp(SECRET, counter)
    with pytest.raises(ParameterError):
        verify_hotp(SECRET, "123456", counter)


@pytest.mark.parametrize("window", [-1, 11, 1.0, None, "1"])
def test_bad_window(window: Any) -> None:
    with pytest.raises(ParameterError):
        verify_totp(SECRET, "123456", AT, window=window)


@pytest.mark.parametrize("last_step", [None, 1.0, "5"])
def test_bad_last_step(last_step: Any) -> None:
    with pytest.raises(ParameterError):
        verify_totp(SECRET, "123456", AT, last_step=last_step)


@pytest.mark.parametrize("look_ahead", [-1, 101, None, 2.0])
def test_bad_look_ahead(look_ahead: Any) -> None:
    with pytest.raises(ParameterError):
        verify_hotp(SECRET, "123456", 0, look_ahead=look_ahead)


@pytest.mark.parametrize("max_steps", [-1, 1001, None])
def test_bad_max_steps(max_steps: Any) -> None:
    with pytest.raises(ParameterError):
        drift_steps(SECRET, "123456", AT, max_steps=max_steps)


def test_bad_parameters_raise_even_with_a_junk_code() -> None:
    # A junk code must not hide a caller's bug.
    with pytest.raises(ParameterError):
        verify_totp(SECRET, "junk", AT, digits=9)
    with pytest.raises(ParameterError):
        verify_hotp(SECRET, "junk", -1)


def test_parameter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="digits"):
        hotp(SECRET, 0, digits=5)


def test_exception_tree() -> None:
    for exc in (CodeReused, InvalidCode, InvalidKeyURI, InvalidSecret, ParameterError, Throttled):
        assert issubclass(exc, KeyfobError)
        assert exc.__name__ in otp.__all__
    assert issubclass(ParameterError, ValueError)
    assert not issubclass(InvalidCode, ValueError)


def test_throttled_says_when_to_retry() -> None:
    exc = Throttled(12.5)
    assert exc.retry_after == 12.5
    assert "13 s" in str(exc)
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own object
    assert isinstance(again, Throttled)
    assert again.retry_after == 12.5 and str(again) == str(exc)
    assert str(Throttled(3, "slow down")) == "slow down"


def test_public_names() -> None:
    for name in otp.__all__:
        assert getattr(otp, name) is not None
    expected = {
        "random_secret",
        "b32encode_secret",
        "b32decode_secret",
        "hotp",
        "totp",
        "time_step",
        "verify_totp",
        "verify_hotp",
        "drift_steps",
        "KeyURI",
        "new_recovery_code",
        "normalize_recovery_code",
        "format_secret_groups",
        "KeyfobError",
        "InvalidCode",
        "CodeReused",
        "Throttled",
        "InvalidSecret",
        "InvalidKeyURI",
        "ParameterError",
    }
    assert expected <= set(otp.__all__)


def test_number_subclasses_are_read_as_numbers() -> None:
    class Seconds(float):
        pass

    class Step(int):
        pass

    assert time_step(Seconds(AT)) == time_step(AT)
    assert time_step(Step(2**40)) == 2**40 // 30
    with pytest.raises(ParameterError):
        time_step(Step(2**100))
    with pytest.raises(ParameterError):
        time_step(Decimal("1700000000"))  # type: ignore[arg-type]
