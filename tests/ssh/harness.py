"""A private sshd on 127.0.0.1 for real SSH logins, shared by the standalone tests
(tests/ssh, pam_google_authenticator) and the central ones (tests/ssh_central, pam_keyfob).

Needs root (useradd, sshd, /etc/pam.d). Everything it creates — the user, the PAM service
file, the sshd process, the work directory — is removed in fixture finalizers.

Pitfalls learnt the hard way:
- the work directory is not under pytest's tmp_path: /tmp/pytest-of-root is 0700 and the
  throwaway user could not enter it;
- OpenSSH 9.2 has no PAMServiceName: the PAM service is the basename sshd runs as, hence a
  symlink with a random name and /etc/pam.d/<that name>;
- sshd renames its process title: it is stopped by the PID in its pid file (and our child);
- paramiko's SSHClient.connect() would fall back to prompting on stdin after the partial
  public-key success: the transport is driven by hand (see :func:`login`).
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
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.clients import oathtool_totp
from tests.conftest import free_port, require_tool

paramiko = pytest.importorskip("paramiko")

TIMEOUT = 30  # seconds, for every subprocess and network step

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: creates a user and runs sshd"
)
# Older paramiko releases touch ciphers (TripleDES…) that cryptography deprecates.
quiet_paramiko = pytest.mark.filterwarnings(
    "ignore::cryptography.utils.CryptographyDeprecationWarning"
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="keyfob-ssh-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


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


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Sshd:
    port: int
    log: Path
    service: str
    pam_file: Path
    extra: dict[str, str] = field(default_factory=dict)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def set_pam_auth(self, auth_lines: str) -> None:
        """Replace the service's auth lines (sshd reads the PAM file at each connection)."""
        self.pam_file.write_text(pam_service(auth_lines))


def pam_service(auth_lines: str) -> str:
    # No common-auth include, or PAM would ask for a password before the code.
    return (
        "# keyfob test service, removed by the test\n"
        f"{auth_lines.rstrip()}\n"
        "account required pam_permit.so\n"
        "session required pam_permit.so\n"
        "password required pam_deny.so\n"
    )


@contextlib.contextmanager
def running_sshd(workdir: Path, user: SshUser, auth_lines: str, drop_in: str) -> Iterator[Sshd]:
    """sshd on a free 127.0.0.1 port with ``drop_in`` and a PAM service of ``auth_lines``."""
    binary = require_tool("sshd")
    keygen = require_tool("ssh-keygen")
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    run_dir.chmod(0o755)
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
    service = f"sshd-keyfob-{secrets.token_hex(3)}"
    link = run_dir / service
    link.symlink_to(binary)
    pam_file = Path("/etc/pam.d") / service
    pam_file.write_text(pam_service(auth_lines))
    port = free_port()
    pid_file = run_dir / "sshd.pid"
    log = run_dir / "sshd.log"
    sshd_config = run_dir / "sshd_config"
    sshd_config.write_text(
        drop_in + f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {host_key}\n"
        f"PidFile {pid_file}\n"
        f"AllowUsers {user.name}\n"
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
            [str(link), "-t", "-f", str(sshd_config)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert checked.returncode == 0, checked.stderr
        assert not port_open(port), f"port {port} is taken"
        process = subprocess.Popen(
            [str(link), "-D", "-E", str(log), "-f", str(sshd_config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not (pid_file.exists() and port_open(port)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield Sshd(port, log, service, pam_file)
    finally:
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


def oathtool_hotp(secret: str, counter: int) -> str:
    return subprocess.run(
        [require_tool("oathtool"), "--hotp", "-b", "-c", str(counter), secret],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    ).stdout.strip()


def other_code(secret: str) -> str:
    """A well-formed code that none of the steps around now accept."""
    now = time.time()
    valid = {oathtool_totp(secret, now + offset * 30) for offset in range(-2, 3)}
    return next(c for c in ("123456", "654321", "111111", "222222") if c not in valid)


@dataclass
class Login:
    ok: bool
    prompts: list[str]
    output: str = ""
    # What the server sent besides prompts: the instructions of each keyboard-interactive
    # round (where sshd puts a PAM module's messages).
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def login(server: Sshd, user: SshUser, code: str, command: str = "id -un") -> Login:
    """Public key, then ``code`` through keyboard-interactive, then run ``command``.

    Not SSHClient.connect(): after the partial public-key success it would fall back to
    prompting on stdin. sshd ends keyboard-interactive with a zero-prompt request, which
    gets an empty answer list.
    """
    prompts: list[str] = []
    messages: list[str] = []

    def handler(title: str, instructions: str, fields: list[tuple[str, bool]]) -> list[str]:
        messages.extend(text for text in (title, instructions) if text)
        prompts.extend(prompt for prompt, _echo in fields)
        return [code for _ in fields]

    started = time.monotonic()
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
            return Login(False, prompts, "", messages, time.monotonic() - started)
        seconds = time.monotonic() - started
        channel = transport.open_session(timeout=TIMEOUT)
        channel.settimeout(TIMEOUT)
        channel.exec_command(command)
        chunks = []
        while chunk := channel.recv(4096):
            chunks.append(chunk)
        assert channel.recv_exit_status() == 0
        return Login(True, prompts, b"".join(chunks).decode(), messages, seconds)
    finally:
        transport.close()
