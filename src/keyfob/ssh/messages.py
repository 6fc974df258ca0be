"""What ``keyfob-ssh`` tells people: its translations, exit codes and failures.

Messages are in English or French, chosen from LANGUAGE, LC_ALL, LC_MESSAGES, LANG.
"""

from __future__ import annotations

import gettext
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from keyfob.ssh import gafile

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


def file_failure(error: gafile.GAFileError) -> Failure:
    path = str(error.path)
    if isinstance(error, gafile.BadPermissions):
        message = _(
            "{path} has mode {mode:04o} and owner uid {uid}: pam_google_authenticator "
            "refuses it. It must belong to you (uid {expected}) and be readable by you only: "
            "chmod 400 {path}"
        ).format(path=path, mode=error.mode, uid=error.uid, expected=error.expected_uid)
    elif isinstance(error, gafile.BadSecret):
        message = _(
            "{path} does not start with a valid secret: run keyfob-ssh setup --force"
        ).format(path=path)
    elif isinstance(error, gafile.MalformedFile):
        message = _("{path} is not a valid google_authenticator file ({detail})").format(
            path=path, detail=error.detail
        )
    elif isinstance(error, gafile.FileExists):
        return Failure(
            _("{path} already exists: use --force to replace it").format(path=path),
            EXIT_REFUSED,
        )
    elif isinstance(error, gafile.DiskFull):
        message = _("no space left to write {path}: nothing was changed").format(path=path)
    elif isinstance(error, gafile.ReadFailed) and error.errno == 2:
        message = _(
            "{path} does not exist: two-factor authentication is not set up (keyfob-ssh setup)"
        ).format(path=path)
    elif isinstance(error, gafile.ReadFailed):
        message = _("cannot read {path}: {detail}").format(path=path, detail=error.detail)
    else:
        message = _("cannot write {path}: {detail}: nothing was changed").format(
            path=path, detail=error.detail
        )
    return Failure(message, EXIT_FILE)
