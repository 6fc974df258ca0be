"""A bad KEYFOB_* value stops every `keyfob` command, and the WSGI app, with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn.config import KNOWN_SETTINGS

from tests.conftest import free_port
from tests.site.conftest import PRODUCTION, base_env, keyfob

BAD = {
    "KEYFOB_TRUST_DAYS": (
        "thirty",
        "KEYFOB_TRUST_DAYS: expected a whole number of days from 1 to 365, got 'thirty'",
    ),
    "KEYFOB_TOTP_WINDOW": (
        "-1",
        "KEYFOB_TOTP_WINDOW: expected a whole number of time steps from 0 to 10, got '-1'",
    ),
    "KEYFOB_WEBAUTHN_RP_ID": (
        "https://portal.example.com",
        "KEYFOB_WEBAUTHN_RP_ID: expected a DNS name: the portal's host or a parent domain of "
        "it, got 'https://portal.example.com'",
    ),
    "KEYFOB_STAFF_PHISHING_RESISTANT": (
        "sometimes",
        "KEYFOB_STAFF_PHISHING_RESISTANT: expected one of 1/0, true/false, yes/no, on/off, "
        "got 'sometimes'",
    ),
    "KEYFOB_SUPPORT_FOUR_EYES": (
        "maybe",
        "KEYFOB_SUPPORT_FOUR_EYES: expected one of 1/0, true/false, yes/no, on/off, got 'maybe'",
    ),
}


def assert_one_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr == line + "\n"
    assert result.stdout == ""


@pytest.mark.parametrize("name", sorted(BAD))
def test_check_stops_with_one_line(tmp_path: Path, name: str) -> None:
    value, line = BAD[name]
    assert_one_line(keyfob(base_env(tmp_path, **{name: value}), "check"), line)


@pytest.mark.parametrize("rp_id", ["example.org", "127.0.0.1", "localhost."])
def test_a_relying_party_id_must_cover_an_allowed_host(tmp_path: Path, rp_id: str) -> None:
    """Keys registered for a domain the portal is not under could never be used: stopped.
    An address is never a relying party id."""
    env = base_env(tmp_path, KEYFOB_ALLOWED_HOSTS="portal.example.com", KEYFOB_WEBAUTHN_RP_ID=rp_id)
    result = keyfob(env, "check")
    assert result.returncode == 2 and result.stderr.startswith("KEYFOB_WEBAUTHN_RP_ID: expected")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("hosts", "rp_id", "expected"),
    [
        ("portal.example.com", "example.com", "example.com"),
        ("portal.example.com", "", "portal.example.com"),
        ("127.0.0.1,.example.com", "", "example.com"),
        ("127.0.0.1,[::1]", "", "localhost"),
    ],
)
def test_the_relying_party_id_and_its_default(
    tmp_path: Path, hosts: str, rp_id: str, expected: str
) -> None:
    """Default: the first allowed host that is a DNS name (an address cannot be one)."""
    env = base_env(tmp_path, KEYFOB_ALLOWED_HOSTS=hosts, KEYFOB_WEBAUTHN_RP_ID=rp_id)
    code = "from django.conf import settings; print(settings.KEYFOB_WEBAUTHN_RP_ID)"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "keyfob.site.settings"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.strip() == expected, result.stderr


def test_serve_and_any_command_stop_with_one_line(tmp_path: Path) -> None:
    value, line = BAD["KEYFOB_TRUST_DAYS"]
    env = base_env(tmp_path, KEYFOB_TRUST_DAYS=value)
    port = str(free_port())
    assert_one_line(keyfob(env, "serve", "--port", port, timeout=30), line)
    assert_one_line(keyfob(env, "migrate", "--no-input"), line)
    assert_one_line(keyfob(env, "check", "--deploy"), line)


def test_a_password_in_a_bad_url_is_not_printed(tmp_path: Path) -> None:
    env = base_env(tmp_path, KEYFOB_DATABASE_URL="mysql://keyfob:hunter2@db/keyfob")
    result = keyfob(env, "check")
    assert_one_line(
        result,
        "KEYFOB_DATABASE_URL: expected a postgresql://user:pass@host:5432/db URL, "
        "got a value not shown here (it may hold a password)",
    )


def test_gunicorn_loading_the_wsgi_module_prints_the_line_and_stops(tmp_path: Path) -> None:
    """Started without `keyfob serve`, gunicorn stops instead of restarting the worker."""
    value, line = BAD["KEYFOB_SUPPORT_FOUR_EYES"]
    env = base_env(tmp_path, KEYFOB_SUPPORT_FOUR_EYES=value)
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{free_port()}",
        "--workers",
        "1",
    ]
    if any("--no-control-socket" in (s.cli or []) for s in KNOWN_SETTINGS):
        argv.append("--no-control-socket")  # as `keyfob serve` does: no socket in $HOME
    result = subprocess.run(
        [*argv, "keyfob.site.wsgi:application"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert line in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_deploy_check_warns_of_a_weakening_choice(tmp_path: Path) -> None:
    env = base_env(tmp_path, **PRODUCTION, KEYFOB_TOTP_WINDOW="3", KEYFOB_SUPPORT_FOUR_EYES="0")
    result = keyfob(env, "check", "--deploy")
    assert result.returncode == 0, result.stderr  # allowed, but said
    assert "keyfob.W002" in result.stderr and "KEYFOB_TOTP_WINDOW is 3" in result.stderr
    assert "keyfob.W003" in result.stderr and "KEYFOB_SUPPORT_FOUR_EYES is off" in result.stderr
    quiet = keyfob(base_env(tmp_path, **PRODUCTION), "check", "--deploy")
    assert "keyfob.W002" not in quiet.stderr and "keyfob.W003" not in quiet.stderr
