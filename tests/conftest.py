"""Suite-wide rules: strict mode, and the helpers that find the real tools tests drive."""

from __future__ import annotations

import os
import shutil

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
