"""The ``keyfob`` command: Django's management commands with Keyfob's settings preset."""

from __future__ import annotations

import os
import sys


def private_umask() -> None:
    """Files and directories this process creates are its user's alone (umask 077 added
    to the one inherited). SQLite creates the database, its -wal and -shm files with the
    umask, and they hold sessions and password hashes; gunicorn, exec'd by ``keyfob
    serve``, keeps it."""
    os.umask(os.umask(0o077) | 0o077)


def main(argv: list[str] | None = None) -> int:
    """Run a management command; 2 when a ``KEYFOB_*`` variable holds a bad value."""
    private_umask()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "keyfob.site.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        # Reads the environment: a bad value stops every command here, before Django
        # would turn it into a traceback (or, for `check`, a quieter fallback).
        settings.INSTALLED_APPS  # noqa: B018
    except ImproperlyConfigured as exc:  # settings.SettingError: one line for the operator
        print(exc, file=sys.stderr)
        return 2
    execute_from_command_line(["keyfob", *(sys.argv[1:] if argv is None else argv)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
