"""Real `keyfob` processes for the operations tests: commands, servers, a PostgreSQL database.

Settings are read from the environment at import, so anything that depends on them runs in
a subprocess with its own environment. Servers listen on 127.0.0.1 only, are waited for
with a bounded poll, and are stopped by their PID.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

import pytest

from tests.conftest import PASSWORD, free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]
# Production settings that pass `keyfob check --deploy`.
PRODUCTION = {
    "KEYFOB_DEBUG": "0",
    "KEYFOB_SECRET_KEY": "k" + secrets.token_urlsafe(60),
    "KEYFOB_ALLOWED_HOSTS": "portal.example.com",
    "KEYFOB_HTTPS": "1",
    "KEYFOB_SECRET_KEYS": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    # Nothing listens there: a notice queued in a test is retried, never delivered.
    "KEYFOB_SMTP_URL": "smtp://127.0.0.1:9",
}


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `keyfob` process: this one's, minus any KEYFOB_* setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_")}
    # Set for in-process Playwright tests; `check --deploy` rightly refuses it.
    for name in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    env["KEYFOB_DATA_DIR"] = str(data_dir)
    # src for Keyfob; the root for tests.conftest, whose flows-built accounts scripts use.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env.update(extra)
    return env


def keyfob(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 120):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "keyfob.site.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=env["KEYFOB_DATA_DIR"],
    )


def django_eval(env: dict[str, str], code: str) -> object:
    """Run ``code`` (which sets ``result``) in a Django process with ``env``; return it."""
    script = (
        "import django, json, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'keyfob.site.settings')\n"
        "django.setup()\n"
        "result = None\n" + code + "\nprint('RESULT=' + json.dumps(result))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env["KEYFOB_DATA_DIR"],
    )
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT="))
    return json.loads(line.removeprefix("RESULT="))


ENROL = """
from tests.conftest import enrol, make_user
result = enrol(make_user({email!r})).b32
"""


def enrol(env: dict[str, str], email: str = "alice@example.com") -> bytes:
    """Create an account with TOTP on in the database of ``env``; return its secret."""
    from keyfob import otp

    b32 = django_eval(env, ENROL.format(email=email))
    assert isinstance(b32, str)
    return otp.b32decode_secret(b32)


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def request(  # type: ignore[no-untyped-def]
        self, method: str, path: str, body: bytes | None = None, headers=None
    ) -> tuple[int, dict[str, list[str]], bytes]:
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            found: dict[str, list[str]] = {}
            for name, value in response.getheaders():
                found.setdefault(name.lower(), []).append(value)
            return response.status, found, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of its workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start_server(env: dict[str, str], workers: int = 2, timeout: float = 30) -> Server:
    """`keyfob serve` on a free port; returns once /healthz answers (or fails the test)."""
    port = free_port()
    log = Path(env["KEYFOB_DATA_DIR"]) / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "keyfob.site.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=env["KEYFOB_DATA_DIR"],
        )  # fmt: skip
    server = Server(port, process, log)
    return wait_until_serving(server, process, log, timeout)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Collects the servers a test starts, and stops them whatever happens."""
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


@dataclass
class Browser:
    """A client with a cookie jar, speaking plain HTTP/1.1 to one or more servers."""

    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def _keep(self, headers: dict[str, list[str]]) -> None:
        for cookie in headers.get("set-cookie", []):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if value in {"", '""'}:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def get(self, server: Server, path: str) -> tuple[int, dict[str, list[str]], str]:
        status, headers, body = server.request("GET", path, headers=self._headers())
        self._keep(headers)
        text = body.decode()
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
        if match:
            self.csrf = match.group(1)
        return status, headers, text

    def post(
        self, server: Server, path: str, data: dict[str, str]
    ) -> tuple[int, dict[str, list[str]], str]:
        body = urlencode({"csrfmiddlewaretoken": self.csrf, **data}).encode()
        headers = self._headers({"Content-Type": "application/x-www-form-urlencoded"})
        status, found, raw = server.request("POST", path, body=body, headers=headers)
        self._keep(found)
        return status, found, raw.decode()

    def password_step(self, server: Server, email: str = "alice@example.com") -> None:
        assert self.get(server, "/login/")[0] == 200
        status, headers, _ = self.post(server, "/login/", {"email": email, "password": PASSWORD})
        assert status == 302 and headers["location"] == ["/login/code/"], (status, headers)


def postgres_server_url() -> str:
    """The PostgreSQL server the suite may use, or skip (a failure in strict mode)."""
    for name in ("KEYFOB_TEST_DATABASE_URL", "KEYFOB_DATABASE_URL"):
        url = os.environ.get(name, "")
        if url.startswith(("postgres://", "postgresql://")):
            return url
    pytest.skip("no PostgreSQL: set KEYFOB_TEST_DATABASE_URL=postgresql://… (CI sets it)")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh database of its own on the suite's PostgreSQL server; its URL."""
    import psycopg

    url = postgres_server_url()
    parts = urlsplit(url)
    name = f"keyfob_mp_{secrets.token_hex(6)}"
    admin = dict(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    )
    with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parts._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
