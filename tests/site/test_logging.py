"""JSON log lines: the fixed fields, the request's ids, and never a code or a password."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from django.test import Client

from keyfob import otp
from keyfob.site.logging import JsonFormatter, RequestContextFilter
from tests.conftest import PASSWORD, Enrolled, password_step


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the keyfob and django loggers write, as KEYFOB_LOG_FORMAT=json would."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    loggers = [logging.getLogger(name) for name in ("keyfob", "django")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.django_db
def test_a_full_sign_in_logs_no_code_and_no_password(
    client: Client,
    json_log: io.StringIO,
    user_with_totp: Enrolled,
    frozen_time: float,
) -> None:
    password_step(client, password="the wrong password")
    password_step(client)
    code = user_with_totp.code()
    wrong = "000000" if code != "000000" else "111111"
    client.post("/login/code/", {"code": wrong})
    response = client.post("/login/code/", {"code": code})
    assert response.status_code == 302
    client.get("/account/security/")
    client.get("/no/such/page/?code=424242")

    text = json_log.getvalue()
    found = lines(json_log)
    assert len(found) >= 6
    for line in found:
        assert {"time", "level", "logger", "request_id", "account_id", "event"} <= set(line)
    requests = [line for line in found if line["event"] == "request"]
    assert len({line["request_id"] for line in requests}) == len(requests)
    signed_in = next(line for line in requests if line["status"] == 302 and
                     line["path"] == "/login/code/")  # fmt: skip
    assert signed_in["account_id"] == user_with_totp.user.pk
    page = next(line for line in requests if line["path"] == "/account/security/")
    assert page["account_id"] == user_with_totp.user.pk
    for secret in [PASSWORD, "the wrong password", code, "424242",
                   otp.b32encode_secret(user_with_totp.secret)]:  # fmt: skip
        assert secret not in text


def test_only_named_fields_are_written_and_secrets_are_masked() -> None:
    message = "login failed password=%s code: %s"
    record = logging.LogRecord(
        "keyfob.x", logging.WARNING, __file__, 1, message, ("hunter22", "123456"), None
    )
    record.password = "hunter22"
    record.request = object()
    record.path = "/login/"
    line = json.loads(JsonFormatter().format(record))
    assert "hunter22" not in json.dumps(line) and "123456" not in json.dumps(line)
    assert line["path"] == "/login/" and "request" not in line and "password" not in line
    assert line["level"] == "warning" and line["request_id"] is None


def test_an_exception_logs_its_type_and_stack_but_not_its_message() -> None:
    try:
        int("12x456")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Server Error", (), sys.exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["exception"] == "ValueError" and line["stack"]
    assert "12x456" not in json.dumps(line)
