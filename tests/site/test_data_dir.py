"""Issue 15: the data directory's files are the account's alone, and a data directory other
users can reach is refused.

Real `keyfob` processes, started with the usual umask of 022, and os.stat modes. Seen
failing before the fix: keyfob.sqlite3, -wal and -shm were created 0644, and `keyfob
migrate` ran in a 0755 directory without a word.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.site.conftest import PRODUCTION, Server, base_env, start_server


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Children started meanwhile inherit ``mask`` (as from a login shell's 022)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def keyfob(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    with umask(0o022):
        return subprocess.run(
            [sys.executable, "-m", "keyfob.site.cli", *args],
            env=env, capture_output=True, text=True, timeout=120, cwd=env["KEYFOB_DATA_DIR"],
        )  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_data_directory_others_can_read_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    env = base_env(data, **PRODUCTION)
    checked = keyfob(env, "check", "--deploy")
    assert checked.returncode == 1
    assert "keyfob.E007" in checked.stderr and f"KEYFOB_DATA_DIR {data}" in checked.stderr
    assert "mode 0755" in checked.stderr and f"chmod 700 {data}" in checked.stderr
    migrated = keyfob(env, "migrate", "--no-input")
    assert migrated.returncode != 0 and "keyfob.E007" in migrated.stderr
    assert "Applying" not in migrated.stdout
    # Django's database checks may open (and so create) the database before refusing: an
    # empty one, the owner's alone.
    for path in data.iterdir():
        assert mode(path) == 0o600, (path.name, oct(mode(path)))
    assert mode(data) == 0o755  # said, not changed behind the operator's back


def test_files_are_created_for_the_owner_only(tmp_path: Path, servers: list[Server]) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o700)
    env = base_env(data)
    migrated = keyfob(env, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr
    demo = keyfob(env, "demo-account")
    assert demo.returncode == 0, demo.stderr
    with umask(0o022):
        server = start_server(env, workers=1)
    servers.append(server)
    # A request that reads the database: the WAL and its index now exist (and stay while
    # the worker keeps its connection).
    status, _, _ = server.request("GET", "/readyz")
    assert status == 200
    files = sorted(p.name for p in data.glob("keyfob.sqlite3*"))
    assert files == ["keyfob.sqlite3", "keyfob.sqlite3-shm", "keyfob.sqlite3-wal"], files
    for name in [*files, "django-secret-key", "demo-account.txt"]:
        assert mode(data / name) == 0o600, (name, oct(mode(data / name)))
    assert mode(data) == 0o700


def test_a_loose_file_is_a_warning(tmp_path: Path) -> None:
    env = base_env(tmp_path, **PRODUCTION)
    assert keyfob(env, "migrate", "--no-input").returncode == 0
    (tmp_path / "keyfob.sqlite3").chmod(0o644)
    checked = keyfob(env, "check", "--deploy")
    assert checked.returncode == 0, checked.stderr  # the directory keeps them in
    assert "keyfob.W005" in checked.stderr and "keyfob.sqlite3" in checked.stderr


def test_deploy_check_warns_when_mail_would_go_to_the_log(tmp_path: Path) -> None:
    """Seen failing before the fix: no word of KEYFOB_SMTP_URL."""
    env = base_env(tmp_path, **PRODUCTION)
    env.pop("KEYFOB_SMTP_URL", None)
    unset = keyfob(env, "check", "--deploy")
    assert unset.returncode == 0, unset.stderr  # a warning: a test bed may want that
    assert "keyfob.W004" in unset.stderr and "KEYFOB_SMTP_URL is not set" in unset.stderr
    env["KEYFOB_SMTP_URL"] = "smtp+starttls://keyfob:pw@127.0.0.1:587"
    assert "keyfob.W004" not in keyfob(env, "check", "--deploy").stderr
