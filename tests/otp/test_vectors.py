"""Known answers: RFC 4226 Appendix D and RFC 6238 Appendix B, read from vectors/*.txt."""

from __future__ import annotations

import hmac
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from keyfob.otp import hotp, time_step, totp, verify_hotp, verify_totp
from tests.conftest import require_tool

VECTORS = Path(__file__).parent / "vectors"


def _rows(name: str) -> list[list[str]]:
    """Non-comment, non-blank lines of a vector file, split on whitespace."""
    lines = (VECTORS / name).read_text(encoding="ascii").splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


class HOTPVector(NamedTuple):
    counter: int
    truncated: int
    code: str


class TOTPVector(NamedTuple):
    at: int
    step: int
    algorithm: str
    seed: bytes
    code: str


RFC4226_SECRET = b"12345678901234567890"
RFC4226 = [HOTPVector(int(c), int(t), code) for c, t, code in _rows("rfc-4226.txt")]


def _rfc6238() -> list[TOTPVector]:
    rows = _rows("rfc-6238.txt")
    seeds = {row[1]: row[2].encode("ascii") for row in rows if row[0] == "seed"}
    return [
        TOTPVector(int(at), int(step, 16), mode, seeds[mode], code)
        for at, step, mode, code in (row for row in rows if row[0] != "seed")
    ]


RFC6238 = _rfc6238()


def test_vector_files_are_complete() -> None:
    assert len(RFC4226) == 10
    assert len(RFC6238) == 18
    assert {v.algorithm for v in RFC6238} == {"SHA1", "SHA256", "SHA512"}
    assert {len(v.seed) for v in RFC6238} == {20, 32, 64}
    assert any(v.at > 2**31 for v in RFC6238)


@pytest.mark.parametrize("vector", RFC4226, ids=lambda v: f"counter={v.counter}")
def test_rfc4226_hotp(vector: HOTPVector) -> None:
    assert hotp(RFC4226_SECRET, vector.counter) == vector.code
    assert verify_hotp(RFC4226_SECRET, vector.code, vector.counter, look_ahead=0) == (
        vector.counter
    )


@pytest.mark.parametrize("vector", RFC4226, ids=lambda v: f"counter={v.counter}")
def test_rfc4226_truncation_column(vector: HOTPVector) -> None:
    # The "Decimal" column checks dynamic truncation on its own, before the modulo.
    mac = hmac.digest(RFC4226_SECRET, vector.counter.to_bytes(8, "big"), "sha1")
    offset = mac[-1] & 0x0F
    assert int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF == vector.truncated
    assert str(vector.truncated % 10**6).zfill(6) == vector.code


@pytest.mark.parametrize("vector", RFC6238, ids=lambda v: f"{v.algorithm}@{v.at}")
def test_rfc6238_totp(vector: TOTPVector) -> None:
    assert time_step(vector.at) == vector.step
    assert totp(vector.seed, vector.at, digits=8, algorithm=vector.algorithm) == vector.code
    assert (
        verify_totp(vector.seed, vector.code, vector.at, digits=8, algorithm=vector.algorithm)
        == vector.step
    )
    # Also as a float, the type time.time() returns.
    assert totp(vector.seed, float(vector.at), digits=8, algorithm=vector.algorithm) == (
        vector.code
    )


def test_vectors_agree_with_oathtool() -> None:
    """The data files themselves are checked by an independent implementation."""
    oathtool = require_tool("oathtool")
    hotp_out = subprocess.run(
        [oathtool, "--hotp", "-c", "0", "-w", "9", RFC4226_SECRET.hex()],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout.split()
    assert hotp_out == [v.code for v in RFC4226]
    for v in RFC6238:
        out = subprocess.run(
            [oathtool, f"--totp={v.algorithm}", "-d", "8", "-N", f"@{v.at}", v.seed.hex()],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        assert out == v.code, v
