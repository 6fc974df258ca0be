"""Two Keyfob checkouts' SSH verify side by side, in turns, beside privacyIDEA (issue 23).

    .venv/bin/python bench/pair.py OLD NEW [--seconds 1] [--rounds 6] [--accounts 60000]
                                   [--json F]

What ../shared/perf/run measures (both on SQLite under `keyfob serve --workers 2`, one load
client in a second process, privacyIDEA's /validate/check with a wrong code as the anchor),
but with both checkouts up at once: for each concurrency (1, 8, 32), --rounds rounds of
[privacyIDEA wrong, OLD right, NEW right, OLD wrong, NEW wrong], --seconds each. On a
machine shared with other work the speed drifts by half within minutes; in turns, a drift
falls on all five, so OLD and NEW compare in the same run, not two runs minutes apart.

Each checkout is set up and served with its own .venv and its own bench/ssh_verify.py
(SETUP, env_for); the load client and requests are this checkout's. Needs privacyIDEA
installed by ../shared/perf/run (in /tmp/perf-anchors/venv-pi). Exits 0: a measurement.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ssh_verify as sv

# ../shared/perf from the main checkout, ../../shared/perf from a worktree (as the Makefile).
_ROOT = Path(__file__).resolve().parent.parent
PERF = next(
    (p for p in (_ROOT.parent / "shared/perf", _ROOT.parent.parent / "shared/perf") if p.is_dir()),
    _ROOT.parent / "shared/perf",
)


def _module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Checkout:
    """One checkout's data directory, accounts and server."""

    def __init__(self, label: str, project: Path, accounts: int) -> None:
        self.label, self.accounts = label, accounts
        self.bench = _module(project / "bench" / "ssh_verify.py", f"bench_{label}")
        self.python = str(project / ".venv" / "bin" / "python")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"keyfob-pair-{label}-"))
        self.env = self.bench.env_for(self.tmp, None)
        self.process: subprocess.Popen[bytes] | None = None
        self.used = self.wrong_used = 0

    def run(self, *argv: str) -> str:
        done = subprocess.run(
            [self.python, *argv], env=self.env, capture_output=True, text=True,
            timeout=900, cwd=self.tmp,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{self.label}: {' '.join(argv[:3])} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def start(self) -> None:
        self.run("-m", "keyfob.site.cli", "migrate", "--no-input", "-v", "0")
        setup = json.loads(self.run("-c", self.bench.SETUP, str(self.accounts)))
        self.token, self.half = setup["token"], self.accounts * 2 // 3
        self.right = setup["secrets"][: self.half]
        self.port = sv.free_port()
        self.process = subprocess.Popen(
            [self.python, "-m", "keyfob.site.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "2"],
            env=self.env, stdout=(self.tmp / "serve.log").open("wb"),
            stderr=subprocess.STDOUT, cwd=self.tmp,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{self.label}: keyfob serve did not start") from None
                time.sleep(0.1)
        sv.load(self.port, sv.health_requests(200), 4, 3, self.tmp)
        self.run_right(4, 3)

    def run_right(self, concurrency: int, seconds: float) -> dict:
        batch = sv.verify_requests(self.token, self.right, self.used, self.half)
        if not batch:
            raise SystemExit(f"{self.label}: out of fresh accounts for right codes")
        result = sv.load(self.port, batch, concurrency, seconds, self.tmp)
        self.used += len(result["latencies"])
        return result

    def run_wrong(self, concurrency: int, seconds: float) -> dict:
        batch = sv.wrong_requests(self.token, self.half, self.accounts, self.wrong_used, 50_000)
        result = sv.load(self.port, batch, concurrency, seconds, self.tmp)
        self.wrong_used += len(result["latencies"])
        return result

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        shutil.rmtree(self.tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--seconds", type=float, default=1.0, help="per turn")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--accounts", type=int, default=60_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    sbs = _module(PERF / "side_by_side.py", "side_by_side")
    sides = [Checkout("old", args.old.resolve(), args.accounts)]
    sides.append(Checkout("new", args.new.resolve(), args.accounts))
    tmp = Path(tempfile.mkdtemp(prefix="keyfob-pair-pi-"))
    results: dict = {}
    try:
        wrong = sbs.start_privacyidea()
        for side in sides:
            side.start()
        sv.load(sbs.PI_PORT, sbs.pi_requests(wrong, 100), 4, 3, tmp)
        for concurrency in sv.CONCURRENCY:
            runs: dict[str, list[dict]] = {"privacyidea_wrong": []}
            for _round in range(args.rounds):
                pi = sbs.pi_requests(wrong, 100_000)
                runs["privacyidea_wrong"].append(
                    sv.load(sbs.PI_PORT, pi, concurrency, args.seconds, tmp)
                )
                for side in sides:
                    got = side.run_right(concurrency, args.seconds)
                    runs.setdefault(f"{side.label}_right", []).append(got)
                for side in sides:
                    got = side.run_wrong(concurrency, args.seconds)
                    runs.setdefault(f"{side.label}_wrong", []).append(got)
            results[concurrency] = {name: sv.summary(r) for name, r in runs.items()}
    finally:
        for side in sides:
            side.stop()
        subprocess.run([str(PERF / "pi_gunicorn.sh"), "stop"], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'conc':>4} {'endpoint':<18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for concurrency, row in results.items():
        for name, r in row.items():
            print(
                f"{concurrency:>4} {name:<18} {r['rps']:>8.0f} {r['p50']:>8.2f} "
                f"{r['p99']:>8.1f}  {r['statuses']}"
            )
        pi = row["privacyidea_wrong"]["rps"]
        for side in sides:
            right, bad = row[f"{side.label}_right"]["rps"], row[f"{side.label}_wrong"]["rps"]
            print(
                f"{concurrency:>4} {side.label}: right/privacyIDEA {right / pi:.1f}x, "
                f"wrong/privacyIDEA {bad / pi:.1f}x, wrong/right {bad / right:.2f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
