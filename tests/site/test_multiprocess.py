"""Two `keyfob serve` processes on one database (DESIGN.md invariants 1 and 2, across servers).

Twenty clients, each past the password step, send their code at the same instant, half to
each process: exactly one signs in with a valid code (or a recovery code), and wrong codes
sent to both processes add up in one throttle. On PostgreSQL (a database of the test's
own) and on the embedded SQLite file shared by both processes.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from keyfob import otp
from tests.site.conftest import (
    Browser,
    Server,
    base_env,
    django_eval,
    enrol,
    keyfob,
    start_server,
)

pytestmark = pytest.mark.slow

CLIENTS = 20

COUNTS = """
from keyfob.audit.models import SecurityEvent
from keyfob.core.models import Throttle
result = {{
    kind: SecurityEvent.objects.filter(kind=kind).count()
    for kind in ["signin_ok", "code_wrong", "code_reused", "throttled", "recovery_used",
                 "recovery_wrong"]
}}
row = Throttle.objects.filter(scope="code").first()
result["consecutive"] = row.consecutive if row else None
"""

RECOVERY_ENROL = """
from keyfob import otp
from keyfob.core import clock
from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.twofactor import flows
user = User.objects.create_user({email!r}, {password!r})
auth = flows.start_setup(user)
# Turning 2FA on needs a session that has just confirmed the password.
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from keyfob.accounts import proofs
request = RequestFactory().post("/")
request.session = SessionStore()
request.user = user
proofs.start(request, user, [proofs.PASSWORD])
codes = flows.confirm_setup(request, user, otp.totp(auth.secret(), clock.time()), Context())
result = codes
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """One data directory (key ring, SQLite file) and one database for every process."""
    extra = {}
    if request.param == "postgresql":
        extra["KEYFOB_DATABASE_URL"] = request.getfixturevalue("postgres_database")
    env = base_env(tmp_path, **extra)
    result = keyfob(env, "migrate", "--no-input")
    assert result.returncode == 0, result.stderr
    return env


def two_servers(env: dict[str, str], servers: list[Server]) -> list[Server]:
    servers += [start_server(env), start_server(env)]
    return servers[-2:]


def past_password(pair: list[Server]) -> list[tuple[Browser, Server]]:
    """CLIENTS clients past the password step, alternating between the two processes."""
    clients = []
    for i in range(CLIENTS):
        browser, server = Browser(), pair[i % 2]
        browser.password_step(server)
        assert browser.get(server, "/login/code/")[0] == 200  # its CSRF token, fresh
        clients.append((browser, server))
    return clients


def all_at_once(clients: list[tuple[Browser, Server]], path: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    """POST ``data`` from every client at the same instant; return (status, location) each."""
    barrier = threading.Barrier(len(clients))
    results: list[tuple[int, str] | BaseException] = [RuntimeError("not run")] * len(clients)

    def run(i: int) -> None:
        browser, server = clients[i]
        try:
            barrier.wait(timeout=60)
            status, headers, _ = browser.post(server, path, data)
            results[i] = (status, headers.get("location", [""])[0])
        except BaseException as exc:  # reported below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def fresh_step() -> float:
    """Now, or the start of the next 30-second step if this one ends within 5 seconds."""
    now = time.time()
    if now % 30 > 25:
        time.sleep(30 - now % 30 + 0.1)
    return time.time()


def test_the_same_code_signs_in_once(shared_env: dict[str, str], servers: list[Server]) -> None:
    secret = enrol(shared_env)
    pair = two_servers(shared_env, servers)
    clients = past_password(pair)
    code = otp.totp(secret, fresh_step())
    results = all_at_once(clients, "/login/code/", {"code": code})
    winners = [r for r in results if r[0] == 302]
    assert winners == [(302, "/account/security/")], results
    assert all(status == 200 for status, _ in results if (status, _) not in winners)
    counts = django_eval(shared_env, COUNTS.format())
    assert isinstance(counts, dict)
    assert counts["signin_ok"] == 1 and counts["code_wrong"] == 0
    assert counts["code_reused"] + counts["throttled"] == CLIENTS - 1


def test_wrong_codes_on_both_processes_add_up(
    shared_env: dict[str, str], servers: list[Server]
) -> None:
    secret = enrol(shared_env)
    pair = two_servers(shared_env, servers)
    clients = past_password(pair)
    now = fresh_step()
    valid = {otp.totp(secret, now + 30 * k) for k in range(-25, 26)}
    wrong = next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in valid)
    results = all_at_once(clients, "/login/code/", {"code": wrong})
    assert all(status == 200 for status, _ in results), results
    counts = django_eval(shared_env, COUNTS.format())
    assert isinstance(counts, dict)
    # Five wrong codes are free, the fifth starts the wait, and every later one is refused
    # unexamined: one count, whichever process each attempt reached.
    assert counts["code_wrong"] == 5 and counts["consecutive"] == 5
    assert counts["throttled"] == CLIENTS - 5
    # The right code is refused now too, by either process.
    browser, server = clients[0][0], pair[1]
    status, _, page = browser.post(server, "/login/code/", {"code": otp.totp(secret, now)})
    assert status == 200 and "Too many failed attempts" in page


def test_the_same_recovery_code_signs_in_once(
    shared_env: dict[str, str], servers: list[Server]
) -> None:
    from keyfob.twofactor import flows

    if not hasattr(flows, "use_recovery_code"):
        pytest.skip("recovery codes are not in keyfob.twofactor.flows yet")
    codes = django_eval(
        shared_env,
        RECOVERY_ENROL.format(email="alice@example.com", password="correct horse battery staple"),
    )
    assert isinstance(codes, list) and codes
    pair = two_servers(shared_env, servers)
    clients = past_password(pair)
    for browser, server in clients:
        assert browser.get(server, "/login/code/?recovery=1")[0] == 200
    results = all_at_once(clients, "/login/code/?recovery=1", {"recovery_code": codes[0]})
    winners = [r for r in results if r[0] == 302]
    assert len(winners) == 1, results
    counts = django_eval(shared_env, COUNTS.format())
    assert isinstance(counts, dict)
    assert counts["recovery_used"] == 1 and counts["recovery_wrong"] == 0
