"""The google_authenticator file format: parsing, writing back, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from keyfob.otp import b32encode_secret
from keyfob.ssh import gafile

SECRET = bytes(range(20))
B32 = b32encode_secret(SECRET)

# What Google's `google-authenticator -t -d -f -r 3 -R 30 -w 3 -e 2` writes, and the state
# pam_google_authenticator adds after logins (RATE_LIMIT timestamps, DISALLOW_REUSE steps).
GOOGLE_TOTP = f"""{B32}
" RATE_LIMIT 3 30 1700000000 1700000010
" WINDOW_SIZE 3
" DISALLOW_REUSE 56666666 56666667
" TOTP_AUTH
12345678
87654321
"""
GOOGLE_HOTP = f"""{B32}
" WINDOW_SIZE 3
" HOTP_COUNTER 1
21699221
"""


def test_parse_time_based_file_with_module_state() -> None:
    config = gafile.parse(GOOGLE_TOTP)
    assert config.secret == SECRET
    assert config.kind == "totp"
    assert config.window_size == 3
    assert config.disallow_reuse
    assert config.used_steps == (56666666, 56666667)
    assert config.rate_limit == (3, 30)
    assert config.rate_limit_state == ("1700000000", "1700000010")
    assert config.scratch_codes == ("12345678", "87654321")


def test_parse_counter_based_file() -> None:
    config = gafile.parse(GOOGLE_HOTP)
    assert (config.kind, config.hotp_counter, config.rate_limit) == ("hotp", 1, None)
    assert not config.disallow_reuse


@pytest.mark.parametrize("text", [GOOGLE_TOTP, GOOGLE_HOTP])
def test_serialise_gives_back_the_same_file(text: str) -> None:
    assert gafile.serialise(gafile.parse(text)) == text


def test_unknown_options_are_kept() -> None:
    text = f'{B32}\n" WINDOW_SIZE 3\n" TOTP_AUTH\n" TIME_SKEW 2\n'
    assert gafile.parse(text).extra_options == ('" TIME_SKEW 2',)
    assert gafile.serialise(gafile.parse(text)) == text


def test_no_totp_auth_and_no_counter_means_emergency_codes_only() -> None:
    assert gafile.parse(f"{B32}\n12345678\n").kind == "none"


@pytest.mark.parametrize(
    "text",
    ["", "\n", "not base32!\n", B32.lower() + "\n", "ABC1\n", "AAAAAAAA\n"],
    ids=["empty", "blank", "punctuation", "lower-case", "digit-1", "too-short"],
)
def test_bad_secret(text: str) -> None:
    with pytest.raises(gafile.BadSecret):
        gafile.parse(text)


@pytest.mark.parametrize(
    "line",
    [
        "hello",
        '" window_size 3',
        '" WINDOW_SIZE three',
        '" RATE_LIMIT 3',
        "1234567",
        "１２３４５６７８",
    ],
)
def test_malformed_line(line: str) -> None:
    with pytest.raises(gafile.MalformedFile):
        gafile.parse(f"{B32}\n{line}\n")


def test_scratch_codes_are_distinct_eight_digit_numbers() -> None:
    codes = gafile.new_scratch_codes(10)
    assert len(set(codes)) == 10
    assert all(len(c) == 8 and c.isdigit() and c[0] != "0" for c in codes)
    assert gafile.new_scratch_codes(0) == ()
    with pytest.raises(ValueError):
        gafile.new_scratch_codes(11)


def test_write_atomic_mode_and_no_leftovers(tmp_path: Path) -> None:
    path = tmp_path / ".google_authenticator"
    gafile.write_atomic(path, GOOGLE_TOTP)
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o400
    assert st.st_uid == os.geteuid()
    assert path.read_text() == GOOGLE_TOTP
    assert os.listdir(tmp_path) == [path.name]
    assert gafile.read(path).scratch_codes == ("12345678", "87654321")


def test_write_atomic_never_replaces_without_force(tmp_path: Path) -> None:
    path = tmp_path / ".google_authenticator"
    path.write_text("old\n")
    with pytest.raises(gafile.FileExists):
        gafile.write_atomic(path, GOOGLE_TOTP)
    assert path.read_text() == "old\n"
    gafile.write_atomic(path, GOOGLE_TOTP, force=True)
    assert path.read_text() == GOOGLE_TOTP
    assert os.listdir(tmp_path) == [path.name]


def test_write_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(gafile.WriteFailed):
        gafile.write_atomic(tmp_path / "nope" / "file", GOOGLE_TOTP)


@pytest.mark.parametrize("mode", [0o644, 0o440, 0o404, 0o700])
def test_read_refuses_what_the_module_refuses(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ga"
    path.write_text(GOOGLE_TOTP)
    path.chmod(mode)
    with pytest.raises(gafile.BadPermissions) as caught:
        gafile.read(path)
    assert caught.value.mode == mode


@pytest.mark.parametrize("mode", [0o400, 0o600])
def test_read_accepts_owner_only_modes(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ga"
    path.write_text(GOOGLE_TOTP)
    path.chmod(mode)
    assert gafile.read(path).kind == "totp"


def test_read_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(gafile.ReadFailed):
        gafile.read(tmp_path / "missing")
