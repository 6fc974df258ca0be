"""Django's SQLite backend, with writers queued on a lock file instead of busy sleeps.

SQLite admits one writer at a time. A second one (``BEGIN IMMEDIATE``) finds the database
locked and SQLite's busy handler sleeps 1, 2, 5, 10 … ms before it looks again, however
soon the lock is freed. Under ``keyfob serve`` every code check is a short write
transaction (well under a millisecond, plus the commit's fsync), so with two workers those
sleeps were most of what a check cost.

Here a transaction first takes an exclusive ``flock`` on ``<database>.lock``. Waiting for
it costs no sleep of SQLite's: the holder releases it at commit or rollback, and the next
writer, polling at a fine grain, finds it free within a fraction of a millisecond.
``BEGIN IMMEDIATE`` then finds the database free too. The busy timeout stays as the fallback
for writers that do not come through here (autocommit writes, another program), and a
writer that cannot get the lock file within that timeout goes ahead and lets SQLite decide.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Any

from django.db.backends.sqlite3 import base

# Polling intervals while another process holds the lock: fine at first, never over 1 ms.
FIRST_WAIT = 0.00005
LONGEST_WAIT = 0.001


class DatabaseWrapper(base.DatabaseWrapper):
    # The hooks below are Django's own private methods, which its type stubs leave out
    # (pyproject.toml lets mypy accept them here).

    _lock_fd: int | None = None
    _lock_pid = 0
    _locked = False

    def _lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        return None if self.is_in_memory_db() else f"{name}.lock"

    def _take_write_lock(self) -> None:
        path = self._lock_path()
        if path is None or self._locked:
            return
        if self._lock_fd is None or self._lock_pid != os.getpid():
            # A descriptor inherited through fork() shares its lock with the parent's: a
            # process uses only one it opened itself.
            self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_pid = os.getpid()
        timeout = float(self.settings_dict["OPTIONS"].get("timeout", 5))
        deadline = time.monotonic() + timeout
        wait = FIRST_WAIT
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # SQLite's own busy timeout decides from here
                time.sleep(wait)
                wait = min(wait * 2, LONGEST_WAIT)
            else:
                self._locked = True
                return

    def _release_write_lock(self) -> None:
        if self._locked and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._locked = False

    def _start_transaction_under_autocommit(self) -> None:
        self._take_write_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_write_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()
        finally:
            self._release_write_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()
        finally:
            self._release_write_lock()

    def _close(self) -> Any:
        try:
            return super()._close()
        finally:
            self._release_write_lock()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
