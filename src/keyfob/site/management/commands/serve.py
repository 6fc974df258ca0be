"""keyfob serve [--host 127.0.0.1] [--port 8000] [--workers N]: the portal under gunicorn."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


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
        self.stdout.write(f"Keyfob on http://{bind}/ (Ctrl-C stops it)")
        self.stdout.flush()
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind", bind,
            "--workers", str(max(1, opts["workers"])),
            "--access-logfile", "-",
            # The access log has the path and status only: no query string can leak a secret.
            "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(b)s',
            "keyfob.site.wsgi:application",
        ]  # fmt: skip
        os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with gunicorn
