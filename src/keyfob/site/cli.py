"""The ``keyfob`` command: Django's management commands with Keyfob's settings preset."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyfob.site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["keyfob", *(sys.argv[1:] if argv is None else argv)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
