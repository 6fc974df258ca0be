"""Gunicorn hooks that run the outbox sender inside each web worker.

Use with ``gunicorn -c python:keyfob.audit.gunicorn_hooks …`` (``keyfob serve`` does).

Why in the workers and not in the master (``when_ready``): the master forks a worker
whenever one exits, is killed for a timeout, or on HUP/TTIN, at any moment. A sender thread
in the master would be holding its database connection at some of those moments, and the
child would inherit that socket (or SQLite file handle) mid-use; when the child drops the
dead thread's objects, the driver can close the master's session under it. Workers never
fork, so a thread there is safe. Several workers make several senders, which the outbox's
compare-and-set claim is built for: each notice is still sent once. The cost is one small
query per worker every ``KEYFOB_MAIL_INTERVAL_SECONDS``.

Only gunicorn setting names may be defined at this module's top level: gunicorn reads
every such name as a setting.
"""

from __future__ import annotations

from typing import Any


def post_worker_init(worker: Any) -> None:
    # Imported here: gunicorn loads this module in the master before Django is set up.
    from keyfob.audit.mailer import start_background_sender

    start_background_sender()


def worker_exit(server: Any, worker: Any) -> None:
    from keyfob.audit.mailer import stop_background_sender

    # Bounded: a send in progress finishes (or its claim is taken over after the lease).
    stop_background_sender(timeout=5.0)
