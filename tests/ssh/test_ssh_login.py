"""Real SSH logins: a private sshd on 127.0.0.1 (tests/ssh/harness.py), Debian's
pam_google_authenticator reading a file that `keyfob-ssh setup` wrote as a throwaway Unix
user, oathtool computing the codes, and paramiko as the client (public key, then
keyboard-interactive).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyfob.ssh import serverconfig
from tests.ssh.harness import (
    Sshd,
    SshUser,
    login,
    needs_root,
    oathtool_hotp,
    oathtool_totp,
    other_code,
    quiet_paramiko,
    run_as_user,
    running_sshd,
    ssh_user,
    workdir,
)

__all__ = ["ssh_user", "workdir"]  # fixtures, used by name

pytestmark = [quiet_paramiko, needs_root]

REPO_SRC = Path(__file__).resolve().parents[2] / "src"
DEBIAN_PYTHON = "/usr/bin/python3"
TIMEOUT = 30  # seconds, for every subprocess step


# -- the pieces: a Python the user can run, sshd with pam_google_authenticator -------------


@pytest.fixture(scope="module")
def user_keyfob_ssh(workdir: Path) -> Path:
    """A `keyfob-ssh` the throwaway user can execute.

    The test interpreter may live under /root (pyenv, mode 0700), so: a virtual environment
    made with Debian's Python, holding a copy of keyfob and of segno (pure Python), and a
    launcher like the console script pip would write. No Django in it: that keyfob-ssh works
    there at all shows it does not need Django.
    """
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        pytest.skip(f"{DEBIAN_PYTHON} is missing (apt-get install python3)")
    venv = workdir / "venv"
    made = subprocess.run(
        [DEBIAN_PYTHON, "-m", "venv", "--without-pip", str(venv)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"python3 -m venv failed (apt-get install python3-venv): {made.stderr}")
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.strip()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_SRC / "keyfob", Path(purelib) / "keyfob", ignore=ignore)
    import segno

    shutil.copytree(Path(segno.__file__).parent, Path(purelib) / "segno", ignore=ignore)
    launcher = venv / "bin" / "keyfob-ssh"
    launcher.write_text(
        f"#!{venv}/bin/python\nimport sys\nfrom keyfob.ssh.cli import main\nsys.exit(main())\n"
    )
    launcher.chmod(0o755)
    for root, dirs, files in os.walk(venv):
        for name in dirs:
            # The throwaway user must be able to enter and run its keyfob-ssh.
            os.chmod(os.path.join(root, name), 0o755)  # noqa: S103
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)
    return launcher


@pytest.fixture(scope="module")
def sshd(workdir: Path, ssh_user: SshUser) -> Iterator[Sshd]:
    if serverconfig.find_module() is None:
        pytest.skip("pam_google_authenticator.so is missing (libpam-google-authenticator)")
    # The product's own lines: the drop-in `server-config` prints, and its PAM line.
    config = serverconfig.build()
    with running_sshd(workdir, ssh_user, config.pam_line, config.drop_in) as server:
        yield server


# -- helpers -------------------------------------------------------------------------------


def setup_as_user(user: SshUser, keyfob_ssh: Path, *options: str) -> str:
    """Run `keyfob-ssh setup --no-confirm --quiet --force` as the user; return the secret."""
    done = run_as_user(
        user, [str(keyfob_ssh), "setup", "--no-confirm", "--quiet", "--force", *options]
    )
    assert done.returncode == 0, done.stderr
    st = user.secret_file.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (user.uid, 0o400)
    return user.secret_file.read_text().splitlines()[0]


def file_lines(user: SshUser) -> list[str]:
    return user.secret_file.read_text().splitlines()


# -- the cases -----------------------------------------------------------------------------


def test_setup_file_lets_the_user_log_in_and_run_a_command(
    sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path
) -> None:
    secret = setup_as_user(ssh_user, user_keyfob_ssh)
    result = login(sshd, ssh_user, oathtool_totp(secret))
    assert result.ok, sshd.log_text()
    assert result.output.strip() == ssh_user.name
    assert any("Verification code" in prompt for prompt in result.prompts)
    # The module kept its reuse and rate-limit state in the 0400 file, by writing a new file
    # and renaming it: a read-only file in a writable home is enough.
    lines = file_lines(ssh_user)
    reuse = next(line for line in lines if line.startswith('" DISALLOW_REUSE'))
    assert len(reuse.split()) == 3, lines  # '"', 'DISALLOW_REUSE', the step just used
    rate = next(line for line in lines if line.startswith('" RATE_LIMIT'))
    assert len(rate.split()) > 4, lines  # the login's timestamp was recorded
    st = ssh_user.secret_file.stat()
    assert st.st_uid == ssh_user.uid
    assert st.st_mode & 0o077 == 0


def test_wrong_code_is_refused(sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path) -> None:
    secret = setup_as_user(ssh_user, user_keyfob_ssh)
    assert not login(sshd, ssh_user, other_code(secret)).ok


def test_same_code_is_refused_the_second_time(
    sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path
) -> None:
    secret = setup_as_user(ssh_user, user_keyfob_ssh)
    now = time.time()
    code = oathtool_totp(secret, now)
    assert login(sshd, ssh_user, code).ok, sshd.log_text()
    assert not login(sshd, ssh_user, code).ok
    # The code of the next step (inside the window of 3) is a different code: accepted.
    assert login(sshd, ssh_user, oathtool_totp(secret, now + 30)).ok, sshd.log_text()


def test_the_code_typed_at_setup_cannot_log_in(
    sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path
) -> None:
    """setup records the confirmation code's step in DISALLOW_REUSE, as the module does."""
    env = {"HOME": str(ssh_user.home), "USER": ssh_user.name, "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [str(user_keyfob_ssh), "setup", "--quiet", "--force"],
        user=ssh_user.uid,
        group=ssh_user.gid,
        extra_groups=[],
        env={**env, "LOGNAME": ssh_user.name},
        cwd=ssh_user.home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        uri = process.stdout.readline()  # printed before the prompt; the process is alive
        secret = uri.split("secret=")[1].split("&")[0]
        now = time.time()
        code = oathtool_totp(secret, now)
        _out, err = process.communicate(code + "\n", timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT)
    assert process.returncode == 0, err
    assert not login(sshd, ssh_user, code).ok
    assert login(sshd, ssh_user, oathtool_totp(secret, now + 30)).ok, sshd.log_text()


def test_emergency_code_works_once_and_leaves_the_file(
    sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path
) -> None:
    setup_as_user(ssh_user, user_keyfob_ssh)
    codes = [line for line in file_lines(ssh_user) if line.isdigit() and len(line) == 8]
    assert len(codes) == 5
    assert login(sshd, ssh_user, codes[0]).ok, sshd.log_text()
    assert codes[0] not in file_lines(ssh_user)
    assert [line for line in file_lines(ssh_user) if line.isdigit()] == codes[1:]
    assert not login(sshd, ssh_user, codes[0]).ok


def _hotp_counter(user: SshUser) -> int:
    line = next(line for line in file_lines(user) if line.startswith('" HOTP_COUNTER'))
    return int(line.split()[2])


def test_counter_based_codes_advance_with_look_ahead(
    sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path
) -> None:
    secret = setup_as_user(ssh_user, user_keyfob_ssh, "--counter", "--rate-limit", "10/30")
    assert _hotp_counter(ssh_user) == 1
    assert login(sshd, ssh_user, oathtool_hotp(secret, 1)).ok, sshd.log_text()
    assert _hotp_counter(ssh_user) == 2
    # Spent: refused. (A failed attempt also moves the counter on, by the module's design.)
    assert not login(sshd, ssh_user, oathtool_hotp(secret, 1)).ok
    counter = _hotp_counter(ssh_user)
    # Look-ahead: the app pressed twice without logging in; window 3 still accepts it.
    assert login(sshd, ssh_user, oathtool_hotp(secret, counter + 2)).ok, sshd.log_text()
    assert _hotp_counter(ssh_user) == counter + 3
    # The codes skipped over are spent too.
    assert not login(sshd, ssh_user, oathtool_hotp(secret, counter + 1)).ok
    # Window 3 is the expected counter and the next two: one more is refused.
    counter = _hotp_counter(ssh_user)
    assert not login(sshd, ssh_user, oathtool_hotp(secret, counter + 3)).ok


def test_window_sets_how_far_from_now_codes_are_accepted(
    sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path
) -> None:
    secret = setup_as_user(ssh_user, user_keyfob_ssh)  # window 3: one step each side
    assert not login(sshd, ssh_user, oathtool_totp(secret, time.time() - 60)).ok
    secret = setup_as_user(ssh_user, user_keyfob_ssh, "--window", "5")  # two each side
    assert login(sshd, ssh_user, oathtool_totp(secret, time.time() + 60)).ok, sshd.log_text()


def test_rate_limit_refuses_the_login_over_the_limit(
    sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path
) -> None:
    # Reuse allowed here so that only the rate limit can refuse the same good code.
    secret = setup_as_user(ssh_user, user_keyfob_ssh, "--rate-limit", "2/30", "--allow-reuse")
    now = time.time()
    code = oathtool_totp(secret, now)
    assert login(sshd, ssh_user, code).ok, sshd.log_text()
    assert login(sshd, ssh_user, code).ok, sshd.log_text()
    assert not login(sshd, ssh_user, code).ok
    # Any code: the next step's is refused as well, until the 30 seconds have passed.
    assert not login(sshd, ssh_user, oathtool_totp(secret, now + 30)).ok
    rate = next(line for line in file_lines(ssh_user) if line.startswith('" RATE_LIMIT'))
    assert rate.split()[2:4] == ["2", "30"]
    assert len(rate.split()) >= 6, rate  # the module's record of the logins


def test_no_file_no_login(sshd: Sshd, ssh_user: SshUser, user_keyfob_ssh: Path) -> None:
    setup_as_user(ssh_user, user_keyfob_ssh)
    done = run_as_user(ssh_user, [str(user_keyfob_ssh), "disable", "--yes"])
    assert done.returncode == 0, done.stderr
    assert not ssh_user.secret_file.exists()
    # No nullok in the PAM line: without a file, no code can get in.
    assert not login(sshd, ssh_user, "12345678").ok


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
