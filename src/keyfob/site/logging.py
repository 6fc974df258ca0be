"""Logs as one JSON object per line (``KEYFOB_LOG_FORMAT=json``), never with a secret in them.

A line carries the time, level, logger, request id, account id and event, plus a short
list of named fields (method, path, status, duration). Nothing else a record holds is
written: not its ``extra`` values, not the request, not an exception's message (which
can quote input), only the exception's type and stack. So a code, a password or a secret
reaches a log line only if a developer writes it into a message itself, and even then
``password=…``, ``code=…``, ``secret=…`` and ``token=…`` are masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import traceback
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest
from django.utils.functional import LazyObject, empty

# The request being served by this thread or task; set by RequestLogMiddleware.
current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "keyfob_current_request", default=None
)

# The named fields a line may carry besides the fixed ones.
ALLOWED_FIELDS = ("method", "path", "status", "duration_ms", "rows", "kind")
_SECRET_WORDS = re.compile(
    r"(?i)\b(password|passwd|code|secret|token|otp|recovery_code)(\s*[=:]\s*)(\S+)"
)


def account_id(request: HttpRequest) -> int | None:
    """The signed-in account's id if the request already knows it (never loads a session)."""
    user: Any = request.__dict__.get("user")
    if isinstance(user, LazyObject):
        user = user._wrapped  # type: ignore[attr-defined]
        if user is empty:
            return None
    if user is not None and getattr(user, "is_authenticated", False):
        return int(user.pk)
    return None


def scrub(text: str) -> str:
    """Mask the value after ``password=``, ``code:``… in free text."""
    return _SECRET_WORDS.sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)


class RequestContextFilter(logging.Filter):
    """Stamp each record with the current request's id and account id (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = current_request.get()
        if not hasattr(record, "request_id"):
            record.request_id = getattr(request, "request_id", None) if request else None
        if not hasattr(record, "account_id"):
            record.account_id = account_id(request) if request is not None else None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with only the fields listed in this module's docstring."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):  # a handler without the filter
            RequestContextFilter().filter(record)
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "request_id": getattr(record, "request_id", None),
            "account_id": getattr(record, "account_id", None),
            "event": scrub(getattr(record, "event", None) or record.getMessage()),
        }
        for name in ALLOWED_FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str | int | float | bool):
                line[name] = scrub(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            # The type and where, not the message: a message can quote what was typed.
            line["exception"] = record.exc_info[0].__name__
            line["stack"] = [
                f"{frame.filename}:{frame.lineno} in {frame.name}"
                for frame in traceback.extract_tb(record.exc_info[2])
            ]
        return json.dumps(line, ensure_ascii=False)


def _gunicorn_logger() -> type:
    from gunicorn import glogging

    class GunicornJsonLogger(glogging.Logger):  # type: ignore[misc]
        """gunicorn's own lines (start, workers, errors) in the same JSON format."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    handler.setFormatter(JsonFormatter())

    return GunicornJsonLogger


def __getattr__(name: str) -> Any:
    # gunicorn is imported only by the process that serves, not by every Django import.
    if name == "GunicornJsonLogger":
        return _gunicorn_logger()
    raise AttributeError(name)
