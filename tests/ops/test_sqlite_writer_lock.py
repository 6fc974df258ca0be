"""keyfob.site.sqlite: write transactions queue on ``<database>.lock`` (a real flock), which
is taken at BEGIN and freed at commit, rollback and close.

These tests open SQLite databases of their own in a temporary directory, so they run (and
mean the same) whichever database the rest of the suite is on.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.utils import ConnectionHandler

ALIAS = "lockprobe"


@pytest.fixture
def lock_path(tmp_path: Path, django_db_blocker: Any) -> Iterator[Path]:
    """A database ``ALIAS`` on keyfob.site.sqlite, with a table ``item``; its lock file."""
    name = tmp_path / "probe.sqlite3"
    probe = {
        "ENGINE": "keyfob.site.sqlite",
        "NAME": str(name),
        "OPTIONS": {"timeout": 0.5, "transaction_mode": "IMMEDIATE"},
    }
    connections.settings[ALIAS] = ConnectionHandler({"default": probe}).settings["default"]
    try:
        with django_db_blocker.unblock():
            with connections[ALIAS].cursor() as cursor:
                cursor.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, who TEXT)")
            yield Path(f"{name}.lock")
            connections[ALIAS].close()
    finally:
        del connections[ALIAS]  # this thread's wrapper, bound to this test's file
        del connections.settings[ALIAS]


def lock_is_free(path: Path) -> bool:
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def insert(who: str) -> None:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("INSERT INTO item (who) VALUES (%s)", [who])


def items() -> list[str]:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT who FROM item ORDER BY id")
        return [who for (who,) in cursor.fetchall()]


def test_held_from_begin_to_commit_and_to_rollback(lock_path: Path) -> None:
    with transaction.atomic(using=ALIAS):
        insert("kept")
        assert not lock_is_free(lock_path)
    assert lock_is_free(lock_path)
    with pytest.raises(RuntimeError), transaction.atomic(using=ALIAS):
        insert("rolled back")
        assert not lock_is_free(lock_path)
        raise RuntimeError("roll back")
    assert lock_is_free(lock_path)
    assert items() == ["kept"]


def test_a_second_writer_waits_for_the_first_and_then_goes_in(lock_path: Path) -> None:
    order: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with transaction.atomic(using=ALIAS):
            insert("first")
            inside.set()
            time.sleep(0.2)
            order.append("first commits")
        connections[ALIAS].close()  # this thread's own connection

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(10)
    with transaction.atomic(using=ALIAS):
        order.append("second begins")
        assert items() == ["first"]
    thread.join(10)
    assert order == ["first commits", "second begins"]


def test_a_lock_file_held_too_long_leaves_the_decision_to_sqlite(lock_path: Path) -> None:
    """Another holder of the lock file (not of the database) delays a writer by the busy
    timeout at most; the writer then goes ahead."""
    with lock_path.open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        started = time.monotonic()
        with transaction.atomic(using=ALIAS):
            insert("late")
        waited = time.monotonic() - started
        fcntl.flock(other, fcntl.LOCK_UN)
    assert waited >= 0.5  # the OPTIONS timeout
    assert items() == ["late"]
