"""Is the verify flat from 10,000 to 1,000,000 accounts on PostgreSQL? (issue 23)

    .venv/bin/python bench/flat.py [--small 10000] [--large 1000000] [--seconds 3]
                                   [--rounds 3] [--json F]

Two databases of their own on the PostgreSQL server at KEYFOB_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432), built by ssh_verify.py's quick build (accounts in
bulk, secrets derived from a seed, logins spread over the tables), dropped afterwards; one
`keyfob serve --workers 2` on each, both up at once. One load client (ssh_verify.py's, a
second process) drives them in turns: for each concurrency (1, 8, 32), --rounds rounds of
[small right, large right, small wrong, large wrong], then at concurrency 8 the portal's
code step (password already given) in turns the same way. Running both sides in turns lets
a drift of a shared machine fall on both, so large/small is the figure to read (target
>= 0.9), not the absolute requests/second. Exits 0: a measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ssh_verify as sv


def start(env: dict[str, str], tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = sv.free_port()
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
                return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (tmp / "serve.log").read_text()
                raise SystemExit(f"keyfob serve did not start: {log_text}") from None
            time.sleep(0.1)


class OutOfAccounts(Exception):
    """A side has no fresh login left for a right code (each is used once)."""


class Side:
    """One database of `accounts` accounts and the server in front of it."""

    def __init__(self, name: str, accounts: int, server_url: str) -> None:
        self.name, self.accounts = name, accounts
        self.tmp = Path(tempfile.mkdtemp(prefix=f"keyfob-flat-{name}-"))
        made = sv.postgres_database(server_url)
        if made is None:
            raise SystemExit(f"no PostgreSQL at {server_url}")
        url, self.drop = made
        self.env = sv.env_for(self.tmp, url)
        self.process: subprocess.Popen[bytes] | None = None
        self.used = self.wrong_used = 0

    def build(self) -> None:
        sv.run(self.env, "-m", "keyfob.site.cli", "migrate", "--no-input", "-v", "0")
        built = time.monotonic()
        args = (str(self.accounts), str(sv.STRIDE), sv.SEED.decode())
        self.token = json.loads(sv.run(self.env, "-c", sv.QUICK_SETUP, *args))["token"]
        took = time.monotonic() - built
        print(f"({self.name}: {self.accounts} accounts built in {took:.0f} s)", flush=True)
        self.wrong_first = self.accounts * 2 // 3
        self.right = sv.quick_secrets(min(self.accounts, 60_000, self.wrong_first))
        self.process, self.port = start(self.env, self.tmp)
        sv.load(self.port, sv.health_requests(200), 4, 5, self.tmp)
        self.run_right(4, 5, 100)

    def run_right(self, concurrency: int, seconds: float, count: int = 1_000_000) -> dict:
        batch = sv.verify_requests(self.token, self.right, self.used, count)
        if not batch:
            raise OutOfAccounts(f"{self.name}: out of fresh accounts for right codes")
        result = sv.load(self.port, batch, concurrency, seconds, self.tmp)
        self.used += len(result["latencies"])
        return result

    def run_wrong(self, concurrency: int, seconds: float) -> dict:
        batch = sv.wrong_requests(
            self.token, self.wrong_first, self.accounts, self.wrong_used, 50_000
        )
        result = sv.load(self.port, batch, concurrency, seconds, self.tmp)
        self.wrong_used += len(result["latencies"])
        return result

    def portal_sessions(self, count: int) -> None:
        """Pending sign-ins (password given) for the next `count` fresh logins."""
        count = min(len(self.right) - self.used, count)
        logins = json.dumps([f"u{i}" for i in range(self.used, self.used + count)])
        self.sessions = json.loads(sv.run(self.env, "-c", sv.PORTAL_SETUP, stdin=logins))[
            "sessions"
        ]
        self.portal_first = self.used
        self.used += count  # the sessions' logins are spent, used or not

    def run_portal(self, concurrency: int, seconds: float) -> dict:
        # Codes made just before they are sent: each stays in its step.
        batch = sv.portal_requests(self.sessions, self.right, self.portal_first)
        result = sv.load(self.port, batch, concurrency, seconds, self.tmp)
        done = len(result["latencies"])
        self.sessions, self.portal_first = self.sessions[done:], self.portal_first + done
        return result

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.drop()  # type: ignore[operator]
        shutil.rmtree(self.tmp, ignore_errors=True)


def report(small: Side, large: Side, results: dict) -> None:
    print(f"\n== PostgreSQL, {small.accounts} vs {large.accounts} accounts, in turns ==")
    print(f"{'conc':>4}  {'endpoint':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  "
          f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'large/small':>11}")  # fmt: skip
    for key, row in results.items():
        for kind in ("right", "wrong", "portal"):
            if kind not in row:
                continue
            s, g = row[kind]["small"], row[kind]["large"]
            print(
                f"{key:>4}  {kind:<8} {s['rps']:>8.0f} {s['p50']:>8.1f} {s['p99']:>8.1f}  "
                f"{g['rps']:>8.0f} {g['p50']:>8.1f} {g['p99']:>8.1f}  {g['rps'] / s['rps']:>11.2f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per endpoint and concurrency")
    parser.add_argument("--rounds", type=int, default=3, help="turns the seconds are cut in")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    server = os.environ.get("KEYFOB_BENCH_DATABASE_URL", sv.DEFAULT_PG)
    small = Side("small", args.small, server)
    large = Side("large", args.large, server)
    results: dict = {}
    try:
        small.build()
        large.build()
        share = args.seconds / args.rounds
        for concurrency in sv.CONCURRENCY:
            runs: dict[str, dict[str, list[dict]]] = {
                kind: {"small": [], "large": []} for kind in ("right", "wrong")
            }
            for _round in range(args.rounds):
                for side in (small, large):
                    runs["right"][side.name].append(side.run_right(concurrency, share))
                for side in (small, large):
                    runs["wrong"][side.name].append(side.run_wrong(concurrency, share))
            results[concurrency] = {
                kind: {name: sv.summary(r) for name, r in sides.items()}
                for kind, sides in runs.items()
            }
        # The portal's code step (password given) at concurrency 8, in turns too.
        portal: dict[str, list[dict]] = {"small": [], "large": []}
        for side in (small, large):
            side.portal_sessions(1500)
        for _round in range(args.rounds):
            for side in (small, large):
                portal[side.name].append(side.run_portal(sv.TARGET_CONCURRENCY, share))
        results[sv.TARGET_CONCURRENCY]["portal"] = {n: sv.summary(r) for n, r in portal.items()}
    except OutOfAccounts as exc:
        # Each right code uses a login once: report what was measured (lower --seconds).
        print(f"({exc}: the figures so far; lower --seconds)", flush=True)
    finally:
        for side in (small, large):
            side.close()
    report(small, large, results)
    if args.json:
        figures = {"small": args.small, "large": args.large, "results": results}
        Path(args.json).write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
