"""The one place Keyfob reads the clock (DESIGN.md invariant 5).

Tests move time with :func:`frozen`; nothing patches ``datetime`` globally.
"""

from __future__ import annotations

import contextlib
import threading
import time as _time
from collections.abc import Iterator
from datetime import UTC, datetime

_lock = threading.Lock()
_offset = 0.0
_fixed: float | None = None


def time() -> float:
    """Return the current POSIX time in seconds (float)."""
    if _fixed is not None:
        return _fixed
    return _time.time() + _offset


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.fromtimestamp(time(), tz=UTC)


@contextlib.contextmanager
def frozen(at: float) -> Iterator[None]:
    """Hold the clock at POSIX time ``at`` for the duration of the block (tests only)."""
    global _fixed
    with _lock:
        previous, _fixed = _fixed, at
    try:
        yield
    finally:
        with _lock:
            _fixed = previous


@contextlib.contextmanager
def shifted(seconds: float) -> Iterator[None]:
    """Run the block with the clock moved by ``seconds`` (tests only)."""
    global _offset
    with _lock:
        previous, _offset = _offset, _offset + seconds
    try:
        yield
    finally:
        with _lock:
            _offset = previous
