"""Suite-wide rules: strict mode, and the helpers that find the real tools tests drive."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

STRICT = os.environ.get("KEYFOB_STRICT_TESTS") == "1"


def require_tool(name: str) -> str:
    """Return the path of a system tool, or skip the test saying which package provides it.

    In strict mode (CI) the skip turns into a failure, see pytest_runtest_makereport.
    """
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        pytest.skip(f"{name} is not installed (make test installs it when run as root)")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"KEYFOB_STRICT_TESTS=1: a skipped test is a failure ({reason})"


def wait_until_serving(server: Any, process: Any, log: Path, timeout: float) -> Any:
    """Poll ``server``'s /healthz until it answers 200; fail with its log otherwise.

    ``server`` has ``request(method, path) -> (status, …)`` and ``stop()``; ``process`` is
    its ``subprocess.Popen``. Shared by every test that starts ``keyfob serve``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"keyfob serve exited ({process.returncode}): {log.read_text()}")
        try:
            if server.request("GET", "/healthz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"keyfob serve did not answer within {timeout} s: {log.read_text()}")
