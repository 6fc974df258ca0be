"""Secrets: generation, base32 round trips, forgiving decoding, clear refusals."""

from __future__ import annotations

import base64
import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfob.otp import (
    InvalidSecret,
    ParameterError,
    b32decode_secret,
    b32encode_secret,
    format_secret_groups,
    random_secret,
)

FAST = settings(max_examples=100, deadline=None)


def test_random_secret() -> None:
    assert len(random_secret()) == 20
    assert len(random_secret(32)) == 32
    assert len(random_secret(16)) == 16
    assert len({random_secret() for _ in range(100)}) == 100


@pytest.mark.parametrize("nbytes", [0, 10, 15, 129, -20, 20.0, None, True])
def test_random_secret_refuses_bad_sizes(nbytes: Any) -> None:
    with pytest.raises(ParameterError):
        random_secret(nbytes)


@FAST
@given(st.binary(min_size=1, max_size=128))
def test_b32_round_trip(secret: bytes) -> None:
    text = b32encode_secret(secret)
    assert "=" not in text
    assert text == text.upper()
    assert text == base64.b32encode(secret).decode().rstrip("=")
    assert b32decode_secret(text) == secret
    assert b32decode_secret(text.lower()) == secret
    assert b32decode_secret(base64.b32encode(secret).decode()) == secret  # with padding
    grouped = format_secret_groups(text)
    assert b32decode_secret(grouped) == secret
    assert b32decode_secret(grouped.lower().replace(" ", "-")) == secret


def test_b32_decode_forgives_typing() -> None:
    secret = b"12345678901234567890"
    assert b32decode_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == secret
    assert b32decode_secret("gezd gnbv gy3t qojq gezd gnbv gy3t qojq") == secret
    assert b32decode_secret("GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ") == secret
    assert b32decode_secret(" GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ ") == secret
    assert b32decode_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE") == secret + b"1"
    assert b32decode_secret("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE======") == secret + b"1"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "----",
        "====",
        "GEZDGNBV1",  # 1 is not base32
        "GEZDGNBV0",
        "GEZDGNBV8",
        "GEZD_GNBV",
        "GEZD\tGNBV",
        "GEZD\nGNBV",
        "GEZD.GNBV",
        "GEZDGNBV=GY3TQOJQ",  # padding in the middle
        "A",  # 1, 3 or 6 characters in a final group encode no whole bytes
        "ABC",
        "ABCDEF",
        "ABCDEFGHA",
        "ＧＥＺＤＧＮＢＶ",  # full-width letters
        "GEZDGNBVß",  # "ß".upper() == "SS"
        "ǅ" * 8,
        "A" * 10_000,
        "\x00" * 8,
    ],
)
def test_b32_decode_refuses_junk(junk: str) -> None:
    with pytest.raises(InvalidSecret):
        b32decode_secret(junk)


@pytest.mark.parametrize("not_text", [None, b"GEZDGNBV", 12345, ["GEZDGNBV"]])
def test_b32_decode_refuses_non_text(not_text: Any) -> None:
    with pytest.raises(InvalidSecret):
        b32decode_secret(not_text)


@FAST
@given(st.text(max_size=64))
def test_b32_decode_never_crashes(text: str) -> None:
    with contextlib.suppress(InvalidSecret):
        b32decode_secret(text)


def test_invalid_secret_messages_say_what_is_wrong() -> None:
    with pytest.raises(InvalidSecret, match="'1'"):
        b32decode_secret("GEZDGNB1")
    with pytest.raises(InvalidSecret, match="empty"):
        b32decode_secret(" - ")


@pytest.mark.parametrize("bad", [b"", "GEZD", None])
def test_b32_encode_refuses_non_bytes(bad: Any) -> None:
    with pytest.raises(ParameterError):
        b32encode_secret(bad)


def test_format_secret_groups() -> None:
    assert format_secret_groups("GEZDGNBVGY3TQOJQ") == "GEZD GNBV GY3T QOJQ"
    assert format_secret_groups("gezdgnbvgy") == "GEZD GNBV GY"
    assert format_secret_groups("GEZD GNBV GY==") == "GEZD GNBV GY"
    secret = random_secret(20)
    grouped = format_secret_groups(b32encode_secret(secret))
    assert len(grouped.split(" ")) == 8
    assert all(len(group) == 4 for group in grouped.split(" "))
    with pytest.raises(InvalidSecret):
        format_secret_groups("GEZD!")
