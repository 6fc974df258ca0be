"""Recovery codes: shape, randomness, forgiving normalisation, clear refusals."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyfob.otp import InvalidCode, new_recovery_code, normalize_recovery_code
from keyfob.otp.recovery import RECOVERY_ALPHABET

FAST = settings(max_examples=150, deadline=None)
SHAPE = re.compile(r"[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){3}", re.ASCII)


def test_alphabet_has_no_look_alikes_and_enough_entropy() -> None:
    assert len(set(RECOVERY_ALPHABET)) == len(RECOVERY_ALPHABET) == 31
    assert not set("01ILO") & set(RECOVERY_ALPHABET)
    assert 16 * math.log2(len(RECOVERY_ALPHABET)) >= 64


def test_new_codes() -> None:
    codes = [new_recovery_code() for _ in range(500)]
    assert all(SHAPE.fullmatch(code) for code in codes)
    assert len(set(codes)) == len(codes)
    # Every symbol turns up: a broken generator (say, digits only) shows at once.
    assert set("".join(codes).replace("-", "")) == set(RECOVERY_ALPHABET)


@FAST
@given(st.data())
def test_normalisation_forgives_case_spaces_and_hyphens(data: st.DataObject) -> None:
    code = new_recovery_code()
    assert normalize_recovery_code(code) == code
    compact = code.replace("-", "")
    # Rebuild the code with random case and random separators between symbols.
    typed = ""
    for ch in compact:
        typed += data.draw(st.sampled_from(["", " ", "-", "  ", " - "]))
        typed += ch.lower() if data.draw(st.booleans()) else ch
    assert normalize_recovery_code(typed) == code


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "ABCD-EFGH-JKMN",  # too short
        "ABCD-EFGH-JKMN-PQRS-T",  # too long
        "ABCD-EFGH-JKMN-PQR0",  # 0 is not in the alphabet
        "ABCD-EFGH-JKMN-PQRO",
        "ABCD-EFGH-JKMN-PQR1",
        "ABCD-EFGH-JKMN-PQRI",
        "ABCD-EFGH-JKMN-PQRL",
        "ABCD_EFGH_JKMN_PQRS",
        "ABCD\tEFGH\tJKMN\tPQRS",
        "ABCD-EFGH-JKMN-PQR\n",
        "ＡＢＣＤ-ＥＦＧＨ-ＪＫＭＮ-ＰＱＲＳ",  # full-width letters
        "ABCD-EFGH-JKMN-PQRß",  # upper() would make it "SS"
        "ABCD-EFGH-JKMN-PQR٣",
        "A" * 10_000,
        "-" * 10_000,
        " " * 100,
        "\x00" * 16,
    ],
)
def test_junk_is_refused(junk: str) -> None:
    with pytest.raises(InvalidCode):
        normalize_recovery_code(junk)


@pytest.mark.parametrize("not_text", [None, b"ABCD-EFGH-JKMN-PQRS", 1234])
def test_non_text_is_refused(not_text: Any) -> None:
    with pytest.raises(InvalidCode):
        normalize_recovery_code(not_text)


@FAST
@given(st.text(max_size=80))
def test_never_crashes(text: str) -> None:
    try:
        result = normalize_recovery_code(text)
    except InvalidCode:
        return
    assert SHAPE.fullmatch(result)
