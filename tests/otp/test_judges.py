"""Independent judges: oathtool (OATH Toolkit, C) and pyotp agree with keyfob.otp on many
random secrets, times, counters, algorithms and lengths."""

from __future__ import annotations

import base64
import hashlib
import random
import subprocess

import pyotp
import pytest

from keyfob.otp import b32encode_secret, hotp, random_secret, time_step, totp
from tests.conftest import require_tool

# A fixed seed: a failure names a case that can be run again.
SEED = 20240611
ALGORITHMS = ("SHA1", "SHA256", "SHA512")


def _oathtool(*args: str) -> list[str]:
    out = subprocess.run(
        [require_tool("oathtool"), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return out.stdout.split()


def test_totp_matches_oathtool() -> None:
    """24 random keys x 9 consecutive steps = 216 codes; one oathtool run per key."""
    rng = random.Random(SEED)
    width = 8
    for case in range(24):
        algorithm = ALGORITHMS[case % 3]
        digits = rng.choice((6, 7, 8))
        period = rng.choice((30, 30, 60, 15))
        secret = rng.randbytes(rng.choice((16, 20, 32, 64)))
        # Up to well after 2038, where a 32-bit time would wrap.
        at = rng.uniform(0, 2**35)
        # Half the runs give oathtool the key in base32, which also checks our encoding.
        key_args = ["-b", b32encode_secret(secret)] if case % 2 else [secret.hex()]
        expected = _oathtool(
            f"--totp={algorithm}",
            "-d",
            str(digits),
            "-s",
            f"{period}s",
            "-N",
            f"@{int(at)}",
            "-w",
            str(width),
            *key_args,
        )
        step = time_step(at, period=period)
        ours = [
            totp(
                secret,
                (step + i) * period + (at % period),
                period=period,
                digits=digits,
                algorithm=algorithm,
            )
            for i in range(width + 1)
        ]
        assert ours == expected, (case, algorithm, digits, period, secret.hex(), at)


def test_totp_t0_matches_oathtool() -> None:
    rng = random.Random(SEED + 1)
    for _ in range(5):
        secret = random_secret()
        t0 = rng.randrange(0, 10**9)
        at = t0 + rng.randrange(0, 10**9)
        expected = _oathtool("--totp", "-S", f"@{t0}", "-N", f"@{at}", secret.hex())
        assert [totp(secret, at, t0=t0)] == expected


def test_hotp_matches_oathtool() -> None:
    """oathtool's HOTP is SHA1 only: 10 random keys x 11 counters = 110 codes."""
    rng = random.Random(SEED + 2)
    for _ in range(10):
        secret = rng.randbytes(20)
        digits = rng.choice((6, 7, 8))
        counter = rng.choice((0, rng.randrange(2**20), rng.randrange(2**63)))
        expected = _oathtool(
            "--hotp", "-d", str(digits), "-c", str(counter), "-w", "10", secret.hex()
        )
        ours = [hotp(secret, counter + i, digits=digits) for i in range(11)]
        assert ours == expected, (secret.hex(), digits, counter)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_totp_and_hotp_match_pyotp(algorithm: str) -> None:
    rng = random.Random(f"{SEED}-{algorithm}")
    digestmod = getattr(hashlib, algorithm.lower())
    for _ in range(60):
        secret = rng.randbytes(rng.choice((16, 20, 32, 64)))
        digits = rng.choice((6, 7, 8))
        b32 = base64.b32encode(secret).decode()
        at = rng.randrange(0, 2**34)
        period = rng.choice((30, 60))
        judge = pyotp.TOTP(b32, digits=digits, digest=digestmod, interval=period)
        assert totp(secret, at, period=period, digits=digits, algorithm=algorithm) == judge.at(at)
        counter = rng.randrange(0, 2**40)
        hjudge = pyotp.HOTP(b32, digits=digits, digest=digestmod)
        assert hotp(secret, counter, digits=digits, algorithm=algorithm) == hjudge.at(counter)
