"""What ``keyfob-ssh`` tells people: its translations, exit codes and failures.

Messages are in English or French, chosen from LANGUAGE, LC_ALL, LC_MESSAGES, LANG.
"""

from __future__ import annotations

import gettext
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from keyfob.ssh import gafile, serverconfig

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_FILE = 3
EXIT_SYSTEM = 4

_LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_translation: gettext.NullTranslations | None = None


def _(message: str) -> str:
    """Translate ``message`` for the environment's language (read on first use)."""
    global _translation
    if _translation is None:
        _translation = gettext.translation("keyfob-ssh", _LOCALE_DIR, fallback=True)
    return _translation.gettext(message)


def _reset_translation() -> None:
    """Forget the chosen language (tests change the environment between calls)."""
    global _translation
    _translation = None


class Failure(Exception):
    """A message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Console:
    """Where the CLI reads and writes; tests pass their own streams."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        ask: Callable[[str], str] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._ask = ask

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def ask(self, prompt: str) -> str | None:
        """Return the answer, or None at end of input."""
        try:
            if self._ask is not None:
                return self._ask(prompt)
            self.out.write(prompt)
            self.out.flush()
            line = sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            return None
        return line.rstrip("\n") if line else None


# What to tell about a problem, by its code (gafile.GAFileError.code for a secret file,
# serverconfig.ServerConfigError.code for server-config): the exit code and the message,
# formatted with the error's fields (path, detail, mode, uid, expected) or the options'.
MESSAGES: dict[str, tuple[int, Callable[[], str]]] = {
    "bad_permissions": (
        EXIT_FILE,
        lambda: _(
            "{path} has mode {mode:04o} and owner uid {uid}: pam_google_authenticator "
            "refuses it. It must belong to you (uid {expected}) and be readable by you only: "
            "chmod 400 {path}"
        ),
    ),
    "bad_secret": (
        EXIT_FILE,
        lambda: _("{path} does not start with a valid secret: run keyfob-ssh setup --force"),
    ),
    "malformed": (
        EXIT_FILE,
        lambda: _("{path} is not a valid google_authenticator file ({detail})"),
    ),
    "exists": (EXIT_REFUSED, lambda: _("{path} already exists: use --force to replace it")),
    "disk_full": (EXIT_FILE, lambda: _("no space left to write {path}: nothing was changed")),
    "missing": (
        EXIT_FILE,
        lambda: _(
            "{path} does not exist: two-factor authentication is not set up (keyfob-ssh setup)"
        ),
    ),
    "read_failed": (EXIT_FILE, lambda: _("cannot read {path}: {detail}")),
    "write_failed": (EXIT_FILE, lambda: _("cannot write {path}: {detail}: nothing was changed")),
    "bad_methods": (
        EXIT_USAGE,
        lambda: _(
            "--methods {methods!r} is not valid: methods separated by commas, "
            "each list ending with keyboard-interactive"
        ),
    ),
    "methods_order": (
        EXIT_USAGE,
        lambda: _(
            "--methods {methods!r}: keyboard-interactive must come last in each list, after "
            "the key: first, the code would be asked of anyone who reaches sshd"
        ),
    ),
    "bad_central": (
        EXIT_USAGE,
        lambda: _(
            "--central {url!r} is not valid: https://host[:port][/path] without spaces, "
            "and absolute paths without spaces for the files"
        ),
    ),
    "sshd_missing": (EXIT_SYSTEM, lambda: _("{sshd} not found: apt-get install openssh-server")),
    "sshd_rejected": (
        EXIT_SYSTEM,
        lambda: _("sshd -t rejects the configuration, nothing was written:\n{output}"),
    ),
}


def file_failure(error: gafile.GAFileError) -> Failure:
    """The :class:`Failure` to report for a secret file's problem."""
    exit_code, message = MESSAGES.get(error.code, MESSAGES["write_failed"])
    text = message().format(
        path=str(error.path),
        detail=error.detail,
        mode=getattr(error, "mode", 0),
        uid=getattr(error, "uid", -1),
        expected=getattr(error, "expected_uid", -1),
    )
    return Failure(text, exit_code)


def write_failure(error: OSError, path: object) -> Failure:
    """The :class:`Failure` to report for a write that failed before anything changed:
    the file the error names, else ``path``."""
    exit_code, message = MESSAGES["write_failed"]
    return Failure(message().format(path=error.filename or path, detail=error.strerror), exit_code)


def server_failure(error: serverconfig.ServerConfigError, **options: object) -> Failure:
    """The :class:`Failure` to report for a server-config problem; ``options`` are the
    values the message names (methods, url, sshd)."""
    exit_code, message = MESSAGES[error.code]
    return Failure(message().format(output=getattr(error, "output", ""), **options), exit_code)
