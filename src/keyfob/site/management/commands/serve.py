"""keyfob serve [--host 127.0.0.1] [--port 8000] [--workers N]: the portal under gunicorn."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


def _has_option(flag: str) -> bool:
    from gunicorn.config import KNOWN_SETTINGS

    return any(flag in (setting.cli or []) for setting in KNOWN_SETTINGS)


class Command(BaseCommand):
    help = "Serve the portal with gunicorn."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args: Any, **opts: Any) -> None:
        bind = (
            f"[{opts['host']}]:{opts['port']}"
            if ":" in opts["host"]
            else (f"{opts['host']}:{opts['port']}")
        )
        if settings.KEYFOB_LOG_FORMAT != "json":  # in JSON, gunicorn's own line says it
            self.stdout.write(f"Keyfob on http://{bind}/ (Ctrl-C stops it)")
            self.stdout.flush()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind", bind,
            "--workers", str(max(1, opts["workers"])),
            "--error-logfile", "-",
        ]  # fmt: skip
        if settings.KEYFOB_LOG_FORMAT == "json":
            # Requests are logged by RequestLogMiddleware (with request and account ids);
            # gunicorn's own lines use the same JSON formatter.
            argv += ["--logger-class", "keyfob.site.logging.GunicornJsonLogger"]
        else:
            # The access log has the path and status only: no query string can leak a secret.
            argv += [
                "--access-logfile",
                "-",
                "--access-logformat",
                '%(h)s "%(m)s %(U)s" %(s)s %(b)s',
            ]
        if importlib.util.find_spec("keyfob.audit.gunicorn_hooks") is not None:
            # Each worker runs the notice outbox sender (see that module for why there).
            argv += ["--config", "python:keyfob.audit.gunicorn_hooks"]
        if _has_option("--no-control-socket"):
            # gunicorn 25+ opens a control socket at one path in $HOME by default: two
            # servers on one machine would fight over it, and nothing here uses it.
            argv.append("--no-control-socket")
        argv.append("keyfob.site.wsgi:application")
        os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with gunicorn
