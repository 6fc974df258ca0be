"""Central SSH 2FA with the real parts: a private sshd (tests/ssh/harness.py) whose PAM
service runs Keyfob's pam_keyfob.py under Debian's pam_python.so, talking over real HTTPS
(gunicorn with a certificate from a throwaway CA) to a live `keyfob serve` with its own data
directory and SQLite database.

Account state is set up in the server's database by short Django processes (the test
process's Django points at the test database, not the server's).
"""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from keyfob.ssh import serverconfig
from tests.conftest import PASSWORD, free_port, require_tool, wait_until_serving
from tests.site.conftest import Server, base_env, django_eval, keyfob
from tests.ssh.harness import Sshd, SshUser, running_sshd, ssh_user, workdir
from tests.tls import Tls, write_tls

__all__ = ["ssh_user", "workdir"]  # fixtures, used by name

EMAIL = "alice@example.com"
SERVER_NAME = "web1"
PAM_PYTHON = "pam_python.so"


# -- a CA and a certificate for 127.0.0.1 -------------------------------------------------


@pytest.fixture(scope="module")
def tls(workdir: Path) -> Tls:
    return write_tls(workdir / "tls")


# -- keyfob serve over HTTPS --------------------------------------------------------------


@dataclass
class HttpsServer(Server):
    """`keyfob serve` behind gunicorn's own TLS."""

    ca: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def connection(self) -> http.client.HTTPConnection:
        context = ssl.create_default_context(cafile=str(self.ca))
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=context)

    def request(  # type: ignore[no-untyped-def]
        self, method: str, path: str, body: bytes | None = None, headers=None
    ) -> tuple[int, dict[str, list[str]], bytes]:
        headers = dict(headers or {})
        if method == "POST":  # Django's CSRF check wants the origin on HTTPS
            headers.setdefault("Origin", self.url)
            headers.setdefault("Referer", self.url + path)
        return super().request(method, path, body, headers)


def start_https_server(env: dict[str, str], tls: Tls, workers: int = 2) -> HttpsServer:
    port = free_port()
    log = Path(env["KEYFOB_DATA_DIR"]) / f"serve-{port}.log"
    # gunicorn reads extra options from GUNICORN_CMD_ARGS: `keyfob serve` itself, with TLS.
    env = {**env, "GUNICORN_CMD_ARGS": f"--certfile {tls.cert} --keyfile {tls.key}"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "keyfob.site.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=env["KEYFOB_DATA_DIR"],
        )  # fmt: skip
    server = HttpsServer(port, process, log, tls.ca, env)
    return wait_until_serving(server, process, log, 30)


@dataclass
class Central:
    server: HttpsServer
    env: dict[str, str]
    token_file: Path
    module_dir: Path
    sshd: Sshd
    user: SshUser

    def pam_line(self, **changes: object) -> str:
        """The PAM line server-config writes, with ``changes`` to build_central's arguments."""
        options: dict[str, object] = {
            "cafile": self.server.ca,
            "module_dir": self.module_dir,
            "nullok": False,
        }
        options.update(changes)
        url = str(options.pop("url", self.server.url))
        token_file = Path(str(options.pop("token_file", self.token_file)))
        extra = str(options.pop("extra", ""))
        config = serverconfig.build_central(url, token_file, **options)  # type: ignore[arg-type]
        return config.pam_line + (f" {extra}" if extra else "")

    def django(self, code: str) -> object:
        return django_eval(self.env, code)


@pytest.fixture(scope="module")
def central(workdir: Path, ssh_user: SshUser, tls: Tls) -> Iterator[Central]:
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a user and runs sshd")
    if serverconfig.find_module(PAM_PYTHON) is None:
        pytest.skip("pam_python.so is missing (apt-get install libpam-python)")
    require_tool("oathtool")
    data_dir = workdir / "keyfob"
    data_dir.mkdir(mode=0o700)
    env = base_env(data_dir)
    done = keyfob(env, "migrate", "--no-input")
    assert done.returncode == 0, done.stderr
    done = keyfob(env, "createuser", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    made = keyfob(env, "server-token", "create", SERVER_NAME)
    assert made.returncode == 0, made.stderr
    token_file = workdir / "keyfob-token"
    token_file.write_text(made.stdout.strip() + "\n")
    token_file.chmod(0o600)
    linked = keyfob(env, "ssh-link", EMAIL, ssh_user.name, "--server", SERVER_NAME)
    assert linked.returncode == 0, linked.stderr
    # Installed as server-config installs it: a copy, outside the source tree.
    module_dir = workdir / "lib"
    serverconfig.install_module(module_dir)
    server = start_https_server(env, tls)
    try:
        config = serverconfig.build_central(
            server.url, token_file, cafile=tls.ca, module_dir=module_dir
        )
        with running_sshd(workdir, ssh_user, config.pam_line, config.drop_in) as sshd:
            yield Central(server, env, token_file, module_dir, sshd, ssh_user)
    finally:
        server.stop()


FRESH = """
from keyfob.accounts.models import User
from keyfob.core.models import Throttle
from keyfob.audit.models import SecurityEvent
from keyfob.twofactor.models import Authenticator
from tests.conftest import enrol
user = User.objects.get(email={email!r})
Authenticator.objects.filter(user=user).delete()
Throttle.objects.all().delete()
enrolled = enrol(user)
SecurityEvent.objects.filter(user=user).delete()
result = {{"secret": enrolled.b32, "recovery": enrolled.recovery_codes}}
"""


@dataclass
class Account:
    secret: str  # base32, for oathtool
    recovery: list[str]


@pytest.fixture
def account(central: Central) -> Account:
    """The linked account with a new secret, new recovery codes, no throttle, no events."""
    data = central.django(FRESH.format(email=EMAIL))
    assert isinstance(data, dict)
    central.sshd.set_pam_auth(central.pam_line())
    return Account(data["secret"], data["recovery"])


def events(central: Central) -> list[dict[str, object]]:
    data = central.django(
        "from keyfob.audit.models import SecurityEvent\n"
        f"result = list(SecurityEvent.objects.filter(user__email={EMAIL!r}).order_by('pk')"
        ".values('kind', 'channel', 'address', 'user_agent', 'detail'))\n"
    )
    assert isinstance(data, list)
    return data
