"""How fast does POST /api/v1/ssh/verify answer under `keyfob serve`? (`make bench`)

For each database (SQLite in a fresh data directory; PostgreSQL too when a server answers at
KEYFOB_BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432, in a database of
its own, dropped afterwards):
  - thousands of accounts with TOTP on, each owning a Unix login, and one server token;
  - `keyfob serve --workers 2` on a free 127.0.0.1 port;
  - from a second process (asyncio, one connection per request as gunicorn's sync workers
    close them): GET /healthz, then POST /api/v1/ssh/verify with a right code for a
    different account each time (the full path: token, account, compare-and-set guarded by
    the throttle, security event), the same with a wrong code (on another third of the
    logins: counted by the throttle and recorded), then POST /api/bench/floor
    (floor_urls.py: one read of a row by its key and one durable insert, in SQL fixed in
    the bench, so it does not move with the code it measures), at concurrency 1, 8 and 32,
    for a few seconds each.
Prints requests/second and p50/p99 latency, the verify/health and floor/health throughput
ratios (the floor's is about the most a request that reads and commits can reach on this
machine with this server), wrong/right, and verify/floor: what Keyfob's own code costs
beyond one read and one durable write. The target is verify >= TARGET_RATIO x floor at
concurrency 8. When privacyIDEA is installed (../shared/perf/ installs it), `make bench`
then runs the side-by-side measurement beside it too (see the Makefile).
Exits 0 even when a target is missed: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

CONCURRENCY = (1, 8, 32)
# verify/floor at TARGET_CONCURRENCY, on each database.
TARGET_RATIO = 0.75
TARGET_CONCURRENCY = 8
FLOOR = "/api/bench/floor"
# Each endpoint's time at a concurrency is split into this many turns (see bench_database).
ROUNDS = 3
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"

SETUP = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyfob.site.settings")
import django
django.setup()
from django.db import transaction
from keyfob import otp
from keyfob.core import clock
from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import SshLogin
from keyfob.twofactor.models import Authenticator
n = int(sys.argv[1])
secrets_b32 = []
with transaction.atomic():
    users = User.objects.bulk_create(
        [User(email=f"bench{i}@example.com", password="!") for i in range(n)]
    )
    users = list(User.objects.filter(email__startswith="bench").order_by("pk"))
    auths, links = [], []
    for i, user in enumerate(users):
        secret = otp.random_secret()
        auth = Authenticator(user=user, confirmed_at=clock.now())
        auth.set_secret(secret)
        auths.append(auth)
        links.append(SshLogin(login=f"u{i}", server="bench", user=user))
        secrets_b32.append(otp.b32encode_secret(secret))
    Authenticator.objects.bulk_create(auths)
    SshLogin.objects.bulk_create(links)
_row, token = flows.create_token("bench")
print(json.dumps({"token": token, "secrets": secrets_b32}))
"""


# --quick-build: many accounts fast (issue 23: flat from 10,000 to 1,000,000 accounts). Bulk
# creates in batches, each account's secret derived from its login's number and a seed, so
# only the logins a run uses need their secret worked out; login u<k> belongs to the
# account made k * STRIDE mod n-th, so the accounts a run reaches are spread over the whole
# table, not the first few thousand rows.
STRIDE = 1_000_003  # a prime: coprime with any number of accounts it does not divide
SEED = b"keyfob-bench-accounts"
QUICK_SETUP = """
import json, os, sys, hashlib, hmac
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyfob.site.settings")
import django
django.setup()
from django.db import transaction
from keyfob.core import clock
from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import SshLogin
from keyfob.twofactor.models import Authenticator
n, stride, seed, batch = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode(), 20_000
assert n % stride, "STRIDE must not divide the number of accounts"
now = clock.now()
def secret(k):
    return hmac.digest(seed, str(k).encode(), "sha1")
login_of = {}  # account number -> login number
for start in range(0, n, batch):
    with transaction.atomic():
        numbers = range(start, min(n, start + batch))
        users = User.objects.bulk_create(
            [User(email=f"bench{i}@example.com", password="!") for i in numbers]
        )
        auths, links = [], []
        for i, user in zip(range(start, start + len(users)), users):
            k = (i * pow(stride, -1, n)) % n  # the login whose account is the i-th made
            auth = Authenticator(user=user, confirmed_at=now)
            auth.set_secret(secret(k))
            auths.append(auth)
            links.append(SshLogin(login=f"u{k}", server="bench", user=user))
        Authenticator.objects.bulk_create(auths)
        SshLogin.objects.bulk_create(links)
_row, token = flows.create_token("bench")
print(json.dumps({"token": token}))
"""


def quick_secrets(count: int) -> list[str]:
    """The secrets of logins u0 … u<count - 1> made by QUICK_SETUP (base32)."""
    import base64
    import hmac

    return [
        base64.b32encode(hmac.digest(SEED, str(k).encode(), "sha1")).decode().rstrip("=")
        for k in range(count)
    ]


# The portal's code step with the password already given: pending sign-ins made directly
# (a session holding the marker the password step leaves, and a CSRF secret), so that the
# load measures the code step alone, not Argon2. Prints {"sessions": [[key, csrf], …]}.
PORTAL_SETUP = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyfob.site.settings")
import django
django.setup()
from django.contrib.sessions.backends.db import SessionStore
from django.utils.crypto import get_random_string
from keyfob.accounts import flows
from keyfob.accounts.models import User
from keyfob.api.models import SshLogin
from keyfob.core import clock
logins = json.loads(sys.stdin.read())
links = SshLogin.objects.select_related("user").filter(login__in=logins, server="bench")
users = {link.login: link.user for link in links}
out = []
for login in logins:
    user = users[login]
    session = SessionStore()
    session[flows.PENDING_KEY] = {
        "uid": user.pk, "at": clock.time(), "next": "", "auth": user.get_session_auth_hash()
    }
    session.create()
    out.append([session.session_key, get_random_string(32)])
print(json.dumps({"sessions": out}))
"""


def portal_requests(sessions: list[list[str]], secrets_b32: list[str], first: int) -> list[str]:
    """POST /login/code/ with the right code, one pending sign-in each (login u<first + i>)."""
    from keyfob import otp

    out = []
    now = time.time()
    for n, (session, csrf) in enumerate(sessions):
        code = otp.totp(otp.b32decode_secret(secrets_b32[first + n]), now)
        body = f"csrfmiddlewaretoken={csrf}&code={code}"
        out.append(
            f"POST /login/code/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Cookie: keyfob-session={session}; keyfob-csrf={csrf}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYFOB_")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # Keyfob's settings and URLs plus the floor endpoint (floor_site.py and floor_urls.py).
    env.update(
        KEYFOB_DATA_DIR=str(data_dir),
        PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT / 'bench'}",
        DJANGO_SETTINGS_MODULE="floor_site",
    )
    if database_url:
        env["KEYFOB_DATABASE_URL"] = database_url
    return env


def run(env: dict[str, str], *argv: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, *argv],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=env["KEYFOB_DATA_DIR"],
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed:\n{done.stderr[-2000:]}")
    return done.stdout


# -- the load generator (runs in its own process) ------------------------------------------


async def _one(port: int, raw: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await reader.read()
    writer.close()
    took = time.perf_counter() - started
    status = data[9:12].decode() if data.startswith(b"HTTP/1.") else "no answer"
    # A verify answer counts by its result too: only "accepted" did the whole work.
    _head, _sep, body = data.partition(b"\r\n\r\n")
    if body.startswith(b'{"result"'):
        status += " " + str(json.loads(body)["result"])
    elif status == "302":  # the portal's code step: where it sends the browser
        location = [h for h in _head.split(b"\r\n") if h.lower().startswith(b"location:")]
        status += " " + (location[0][9:].strip().decode() if location else "?")
    return took, status


async def _load(port: int, requests: list[bytes], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    index = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal index
        while time.perf_counter() < deadline and index < len(requests):
            raw = requests[index]
            index += 1
            took, status = await _one(port, raw)
            latencies.append(took)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"elapsed": time.perf_counter() - started, "latencies": latencies, "statuses": statuses}


def summary(runs: list[dict]) -> dict:
    """Several runs of one endpoint as one: requests/second over their summed time, and the
    p50/p99 of all their latencies (in ms)."""
    latencies = sorted(t for r in runs for t in r["latencies"])
    statuses: dict[str, int] = {}
    for r in runs:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "rps": len(latencies) / sum(r["elapsed"] for r in runs),
        "p50": pct(0.50),
        "p99": pct(0.99),
        "n": len(latencies),
        "statuses": statuses,
    }


def load_main(spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    requests = [r.encode("latin-1") for r in spec["requests"]]
    result = asyncio.run(_load(spec["port"], requests, spec["concurrency"], spec["seconds"]))
    print(json.dumps(result))


def load(port: int, requests: list[str], concurrency: int, seconds: float, tmp: Path) -> dict:
    spec = tmp / "spec.json"
    spec.write_text(
        json.dumps(
            {"port": port, "requests": requests, "concurrency": concurrency, "seconds": seconds}
        )
    )
    done = subprocess.run(
        [sys.executable, __file__, "--load", str(spec)],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if done.returncode != 0:
        raise SystemExit(f"load generator failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout))


# -- one database ------------------------------------------------------------------------


def health_requests(count: int) -> list[str]:
    raw = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    return [raw] * count


def verify_requests(
    token: str, secrets_b32: list[str], first: int, count: int, path: str = "/api/v1/ssh/verify"
) -> list[str]:
    from keyfob import otp

    out = []
    now = time.time()
    for i in range(first, first + count):
        # The floor consumes nothing: it may go round the accounts again.
        if i >= len(secrets_b32) and path != FLOOR:
            break
        i %= len(secrets_b32)
        code = otp.totp(otp.b32decode_secret(secrets_b32[i]), now)
        body = json.dumps({"login": f"u{i}", "code": code, "client_address": "192.0.2.10"})
        out.append(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
    return out


def wrong_requests(token: str, first: int, last: int, start: int, count: int) -> list[str]:
    """POST /api/v1/ssh/verify with a wrong code, logins u<first> … u<last - 1> in turn from
    the start-th, round again when needed (each login takes a few wrong codes before its
    throttle would refuse: the statuses say so if it ever does)."""
    out = []
    for n in range(start, start + count):
        i = first + n % (last - first)
        body = json.dumps({"login": f"u{i}", "code": "000000", "client_address": "192.0.2.10"})
        out.append(
            f"POST /api/v1/ssh/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
    return out


def bench_database(
    label: str, database_url: str | None, accounts: int, seconds: float, quick: bool = False
) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="keyfob-bench-"))
    env = env_for(tmp, database_url)
    process = None
    results: dict = {}
    try:
        run(env, "-m", "keyfob.site.cli", "migrate", "--no-input", "-v", "0")
        if quick:
            built = time.monotonic()
            setup = json.loads(
                run(env, "-c", QUICK_SETUP, str(accounts), str(STRIDE), SEED.decode())
            )
            # Enough logins for the run's right codes (each is used once).
            setup["secrets"] = quick_secrets(min(accounts, 60_000))
            print(f"({accounts} accounts built in {time.monotonic() - built:.0f} s)", flush=True)
        else:
            setup = json.loads(run(env, "-c", SETUP, str(accounts)))
        port = free_port()
        log = (tmp / "serve.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "keyfob.site.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log_text = (tmp / "serve.log").read_text()
                    raise SystemExit(f"keyfob serve did not start: {log_text}") from None
                time.sleep(0.1)
        # Warm both workers up (imports, connections) before timing.
        load(port, health_requests(200), 4, 5, tmp)
        # Right codes on logins [0, right_end), wrong ones ("000000") on [wrong_first, accounts).
        wrong_first = accounts * 2 // 3
        right = setup["secrets"][: min(len(setup["secrets"]), wrong_first)]
        used = wrong_used = 0
        warm = verify_requests(setup["token"], right, used, 100)
        used += len(warm)
        load(port, warm, 4, 5, tmp)
        load(port, verify_requests(setup["token"], setup["secrets"], 0, 100, FLOOR), 4, 5, tmp)
        for concurrency in CONCURRENCY:
            # The three endpoints take turns, ROUNDS times each, so that a drift of the
            # machine's speed (another tenant, a checkpoint, autovacuum) falls on all three.
            runs: dict[str, list[dict]] = {"health": [], "verify": [], "wrong": [], "floor": []}
            share = seconds / ROUNDS
            for _round in range(ROUNDS):
                runs["health"].append(load(port, health_requests(200_000), concurrency, share, tmp))
                # Code requests are made just before they are sent: each stays in its step.
                batch = verify_requests(setup["token"], right, used, accounts)
                if not batch:
                    raise SystemExit("out of fresh accounts for right codes: raise --accounts")
                runs["verify"].append(load(port, batch, concurrency, share, tmp))
                used += len(runs["verify"][-1]["latencies"])
                batch = wrong_requests(setup["token"], wrong_first, accounts, wrong_used, 50_000)
                runs["wrong"].append(load(port, batch, concurrency, share, tmp))
                wrong_used += len(runs["wrong"][-1]["latencies"])
                batch = verify_requests(setup["token"], setup["secrets"], used, 100_000, FLOOR)
                runs["floor"].append(load(port, batch, concurrency, share, tmp))
            results[concurrency] = {name: summary(r) for name, r in runs.items()}
        # The portal's code step at the target concurrency, on accounts no verify used.
        count = min(len(right) - used, 4000)
        logins = json.dumps([f"u{i}" for i in range(used, used + count)])
        made = json.loads(run(env, "-c", PORTAL_SETUP, stdin=logins))["sessions"]
        batch = portal_requests(made, setup["secrets"], used)
        runs = {"portal": [load(port, batch, TARGET_CONCURRENCY, seconds, tmp)]}
        used += len(runs["portal"][0]["latencies"])
        results["portal_code_step"] = summary(runs["portal"])
        results["accounts_used"] = used
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        shutil.rmtree(tmp, ignore_errors=True)
    report(label, results)
    return results


def report(label: str, results: dict) -> None:
    print(f"\n== {label}: keyfob serve --workers 2, load from a second process ==")
    print(f"{'conc':>4}  {'endpoint':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for concurrency in CONCURRENCY:
        row = results[concurrency]
        for name in ("health", "verify", "wrong", "floor"):
            r = row[name]
            print(
                f"{concurrency:>4}  {name:<10} {r['rps']:>8.0f} {r['p50']:>8.1f} "
                f"{r['p99']:>8.1f}  {r['statuses']}"
            )
        ratio = row["verify"]["rps"] / row["health"]["rps"]
        print(f"{concurrency:>4}  ratio verify/health = {ratio:.2f}")
        wrong = row["wrong"]["rps"] / row["verify"]["rps"]
        print(f"{concurrency:>4}  ratio wrong/right   = {wrong:.2f}")
        floor = row["floor"]["rps"] / row["health"]["rps"]
        print(f"{concurrency:>4}  ratio floor/health  = {floor:.2f} (the most a verify can reach)")
        # What the verify's own code costs, beyond its database work.
        own = ratio / floor
        verdict = ""
        if concurrency == TARGET_CONCURRENCY:
            verdict = " (ok)" if own >= TARGET_RATIO else f" (below the {TARGET_RATIO} target)"
        print(f"{concurrency:>4}  ratio verify/floor  = {own:.2f}{verdict}")
    portal = results.get("portal_code_step")
    if portal:
        print(
            f"{TARGET_CONCURRENCY:>4}  portal code step (password given): "
            f"{portal['rps']:.0f} req/s, p50 {portal['p50']:.1f} ms, "
            f"p99 {portal['p99']:.1f} ms  {portal['statuses']}"
        )


# -- PostgreSQL: a database of our own ------------------------------------------------------


def postgres_database(server_url: str) -> tuple[str, object] | None:
    try:
        import psycopg
    except ImportError:
        return None
    parts = urlsplit(server_url)
    admin = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or "",
        "dbname": "postgres",
        "autocommit": True,
        "connect_timeout": 5,
    }
    name = f"keyfob_bench_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"\n(PostgreSQL skipped: {server_url} did not answer: {exc})")
        return None

    def drop() -> None:
        with psycopg.connect(**admin) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return parts._replace(path=f"/{name}").geturl(), drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0, help="per endpoint and concurrency")
    parser.add_argument("--accounts", type=int, default=12_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--quick-build",
        action="store_true",
        help="build the accounts in bulk, secrets derived from a seed (for 1,000,000)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.load:
        load_main(args.load)
        return 0
    figures = {}
    if not args.no_sqlite:
        figures["sqlite"] = bench_database(
            "SQLite", None, args.accounts, args.seconds, args.quick_build
        )
    if not args.no_postgres:
        made = postgres_database(os.environ.get("KEYFOB_BENCH_DATABASE_URL", DEFAULT_PG))
        if made is not None:
            url, drop = made
            try:
                figures["postgresql"] = bench_database(
                    "PostgreSQL", url, args.accounts, args.seconds, args.quick_build
                )
            finally:
                drop()  # type: ignore[operator]
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
