"""Real SSH logins: a private sshd on 127.0.0.1, Debian's pam_google_authenticator reading a
file that `keyfob-ssh setup` wrote as a throwaway Unix user, oathtool computing the codes,
and paramiko as the client (public key, then keyboard-interactive).

Needs root (useradd, sshd, /etc/pam.d). Everything it creates — the user, the PAM service
file, the sshd process, the work directory — is removed in fixture finalizers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from keyfob.ssh import serverconfig
from tests.conftest import require_tool

paramiko = pytest.importorskip("paramiko")

pytestmark = [
    # Older paramiko releases touch ciphers (TripleDES…) that cryptography deprecates.
    pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates a user and runs sshd"),
]

REPO_SRC = Path(__file__).resolve().parents[2] / "src"
DEBIAN_PYTHON = "/usr/bin/python3"
TIMEOUT = 30  # seconds, for every subprocess and network step


# -- the pieces: a Python the user can run, the user, sshd ---------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700, the user could not enter it.
    path = Path(tempfile.mkdtemp(prefix="keyfob-ssh-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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


@dataclass
class SshUser:
    name: str
    uid: int
    gid: int
    home: Path
    key: paramiko.PKey

    @property
    def secret_file(self) -> Path:
        return self.home / ".google_authenticator"


@pytest.fixture(scope="module")
def ssh_user(workdir: Path) -> Iterator[SshUser]:
    useradd = require_tool("useradd")
    userdel = require_tool("userdel")
    name = f"kf{secrets.token_hex(4)}"
    (workdir / "home").mkdir(mode=0o755)
    home = workdir / "home" / name
    subprocess.run(
        [
            *(useradd, "--create-home", "--home-dir", str(home), "--shell", "/bin/sh"),
            *("--user-group", "--password", "*", "--comment", "keyfob test user", name),
        ],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    try:
        entry = pwd.getpwnam(name)
        key = paramiko.ECDSAKey.generate()
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700)
        (ssh_dir / "authorized_keys").write_text(f"{key.get_name()} {key.get_base64()}\n")
        (ssh_dir / "authorized_keys").chmod(0o600)
        for path in (ssh_dir, ssh_dir / "authorized_keys"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        yield SshUser(name, entry.pw_uid, entry.pw_gid, home, key)
    finally:
        subprocess.run([userdel, "--remove", name], capture_output=True, timeout=TIMEOUT)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Sshd:
    port: int
    log: Path
    service: str
    extra: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="module")
def sshd(workdir: Path, ssh_user: SshUser) -> Iterator[Sshd]:
    binary = require_tool("sshd")
    keygen = require_tool("ssh-keygen")
    if serverconfig.find_module() is None:
        pytest.skip("pam_google_authenticator.so is missing (libpam-google-authenticator)")
    run_dir = workdir / "run"
    run_dir.mkdir(mode=0o755)
    created_privsep = False
    if not os.path.isdir("/run/sshd"):  # sshd's privilege separation directory
        os.makedirs("/run/sshd", mode=0o755)
        created_privsep = True
    host_key = run_dir / "host_ed25519"
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    host_key.chmod(0o600)
    # OpenSSH 9.2 has no PAMServiceName: the PAM service is the basename sshd runs as.
    service = f"sshd-keyfob-{secrets.token_hex(3)}"
    link = run_dir / service
    link.symlink_to(binary)
    pam_file = Path("/etc/pam.d") / service
    # The product's own lines: the drop-in `server-config` prints, and its PAM line. No
    # common-auth include, or PAM would ask for a password before the code.
    config = serverconfig.build()
    pam_file.write_text(
        "# keyfob test service, removed by the test\n"
        f"{config.pam_line}\n"
        "account required pam_permit.so\n"
        "session required pam_permit.so\n"
        "password required pam_deny.so\n"
    )
    port = _free_port()
    pid_file = run_dir / "sshd.pid"
    log = run_dir / "sshd.log"
    sshd_config = run_dir / "sshd_config"
    sshd_config.write_text(
        config.drop_in + f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"PidFile {pid_file}\n"
        f"AllowUsers {ssh_user.name}\n"
        "PasswordAuthentication no\n"
        "PubkeyAuthentication yes\n"
        "PermitRootLogin no\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        "LogLevel VERBOSE\n"
    )
    process: subprocess.Popen[bytes] | None = None
    try:
        checked = subprocess.run(
            [str(link), "-t", "-f", str(sshd_config)], capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stderr
        assert not _port_open(port), f"port {port} is taken"
        process = subprocess.Popen(
            [str(link), "-D", "-E", str(log), "-f", str(sshd_config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not (pid_file.exists() and _port_open(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Sshd(port, log, service)
    finally:
        # sshd renames its process title: find it by its pid file (and our own child).
        pids = set()
        with contextlib.suppress(OSError, ValueError):
            pids.add(int(pid_file.read_text().strip()))
        if process is not None:
            pids.add(process.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if process is not None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        pam_file.unlink(missing_ok=True)
        if created_privsep:
            with contextlib.suppress(OSError):
                os.rmdir("/run/sshd")


# -- helpers -------------------------------------------------------------------------------


def run_as_user(user: SshUser, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {
        "HOME": str(user.home),
        "USER": user.name,
        "LOGNAME": user.name,
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    return subprocess.run(
        argv,
        user=user.uid,
        group=user.gid,
        extra_groups=[],
        env=env,
        cwd=user.home,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


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


def oathtool_totp(secret: str, at: float | None = None) -> str:
    when = int(time.time() if at is None else at)
    return subprocess.run(
        [require_tool("oathtool"), "--totp", "-b", "-N", f"@{when}", secret],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.strip()


def oathtool_hotp(secret: str, counter: int) -> str:
    return subprocess.run(
        [require_tool("oathtool"), "--hotp", "-b", "-c", str(counter), secret],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.strip()


@dataclass
class Login:
    ok: bool
    prompts: list[str]
    output: str = ""


def login(server: Sshd, user: SshUser, code: str, command: str = "id -un") -> Login:
    """Public key, then the code through keyboard-interactive, then run `command`.

    Not SSHClient.connect(): after the partial public-key success it would fall back to
    prompting on stdin. sshd ends keyboard-interactive with a zero-prompt request, which
    gets an empty answer list.
    """
    prompts: list[str] = []

    def handler(title: str, instructions: str, fields: list[tuple[str, bool]]) -> list[str]:
        prompts.extend(prompt for prompt, _echo in fields)
        return [code for _ in fields]

    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = TIMEOUT
    transport.auth_timeout = TIMEOUT
    transport.handshake_timeout = TIMEOUT
    try:
        transport.start_client(timeout=TIMEOUT)
        remaining = transport.auth_publickey(user.name, user.key)
        assert remaining == ["keyboard-interactive"], remaining
        try:
            transport.auth_interactive(user.name, handler)
        except paramiko.AuthenticationException:
            return Login(False, prompts)
        channel = transport.open_session(timeout=TIMEOUT)
        channel.settimeout(TIMEOUT)
        channel.exec_command(command)
        chunks = []
        while chunk := channel.recv(4096):
            chunks.append(chunk)
        assert channel.recv_exit_status() == 0
        return Login(True, prompts, b"".join(chunks).decode())
    finally:
        transport.close()


def other_code(secret: str) -> str:
    """A well-formed code that none of the steps around now accept."""
    now = time.time()
    valid = {oathtool_totp(secret, now + offset * 30) for offset in range(-2, 3)}
    return next(c for c in ("123456", "654321", "111111", "222222") if c not in valid)


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
