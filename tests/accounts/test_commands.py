"""The keyfob command: createuser and demo-account, run as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def keyfob(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYFOB_DATA_DIR": str(data_dir)}
    env.pop("KEYFOB_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "keyfob.site.cli", *args],
        input=stdin, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keyfob-cli")
    assert keyfob(path, "migrate", "--no-input").returncode == 0
    return path


def test_createuser_makes_an_account_and_refuses_junk(data_dir: Path) -> None:
    ok = keyfob(
        data_dir, "createuser", "Staff@Example.com", "--password-stdin", "--staff",
        "--phone", "+33123456789", "--kind", "company", "--name", "Sam",
        stdin="a long enough passphrase\n",
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "created staff account staff@example.com" in ok.stdout
    again = keyfob(data_dir, "createuser", "staff@example.com", "--password-stdin", stdin="x" * 20)
    assert again.returncode != 0 and "already exists" in again.stderr
    for args, stdin, message in [
        (["not-an-email"], "a long enough passphrase\n", "not a valid e-mail"),
        (["p@example.com"], "short\n", "too short"),
        (["q@example.com", "--phone", "0612"], "a long enough passphrase\n", "international"),
    ]:
        bad = keyfob(data_dir, "createuser", *args, "--password-stdin", stdin=stdin)
        assert bad.returncode != 0 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
    bad_kind = keyfob(data_dir, "createuser", "r@example.com", "--kind", "robot")
    assert bad_kind.returncode == 2 and "invalid choice" in bad_kind.stderr


def test_demo_account_prints_working_credentials_once(data_dir: Path) -> None:
    first = keyfob(data_dir, "demo-account")
    assert first.returncode == 0, first.stderr
    assert "demo@example.com" in first.stdout and "password" in first.stdout
    second = keyfob(data_dir, "demo-account")
    assert "created earlier" in second.stdout
    assert first.stdout.split("password ")[1].split()[0] in second.stdout
    assert (data_dir / "demo-account.txt").stat().st_mode & 0o077 == 0
    password = first.stdout.split("password ")[1].split()[0]
    check = keyfob(
        data_dir, "shell", "-c",
        "from keyfob.accounts.models import User; "
        f"print(User.objects.get(email='demo@example.com').check_password({password!r}))",
    )  # fmt: skip
    assert check.stdout.strip().splitlines()[-1] == "True", check.stderr
