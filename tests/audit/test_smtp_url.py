"""KEYFOB_SMTP_URL: parsing, and real TLS (smtps://) and STARTTLS with a password."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from keyfob.accounts.models import User
from keyfob.audit import mailer, notices
from keyfob.audit.mailer import SmtpConfig, parse_smtp_url
from keyfob.audit.models import Outbox, OutboxState
from keyfob.audit.notices import NoticeKind
from tests.audit.conftest import CONTEXT
from tests.smtp import SmtpServer, accept_only


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", SmtpConfig("mail.example.com", 25, "none")),
        ("smtp://127.0.0.1:2525", SmtpConfig("127.0.0.1", 2525, "none")),
        ("smtps://mail.example.com", SmtpConfig("mail.example.com", 465, "tls")),
        ("SMTPS://mail.example.com:4650/", SmtpConfig("mail.example.com", 4650, "tls")),
        ("smtp+starttls://mail.example.com", SmtpConfig("mail.example.com", 587, "starttls")),
        (
            "smtp+starttls://keyfob%40example.com:p%40ss%3Aw%2Ford@mail.example.com:587",
            SmtpConfig("mail.example.com", 587, "starttls", "keyfob@example.com", "p@ss:w/ord"),
        ),
        ("smtp://user@[::1]:25", SmtpConfig("::1", 25, "none", "user")),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@mail.example.com",
        "smtp+tls://user:hunter2@mail.example.com",
        "smtp://user:hunter2@",
        "smtp://user:hunter2@mail.example.com:99999",
        "smtp://user:hunter2@mail.example.com:port",
        "smtp://user:hunter2@mail.example.com/path",
        "smtp://user:hunter2@mail.example.com?x=1",
    ],
)
def test_a_bad_smtp_url_is_refused_without_repeating_it(url: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        parse_smtp_url(url)
    assert "hunter2" not in str(caught.value) and "user" not in str(caught.value)


def test_the_password_is_not_in_the_config_repr() -> None:
    assert "hunter2" not in repr(parse_smtp_url("smtps://u:hunter2@mail.example.com"))


def send_one(user: User) -> mailer.SendReport:
    with transaction.atomic():
        notices.queue(user, NoticeKind.TWOFACTOR_ON, CONTEXT)
    return mailer.send_pending()


def test_smtps_delivers_over_tls(
    alice: User,
    make_server: Callable[..., SmtpServer],
    server_tls: ssl.SSLContext,
    settings: Any,
) -> None:
    server = make_server(ssl_context=server_tls)
    server.start()
    settings.KEYFOB_SMTP_URL = server.url("smtps")
    assert send_one(alice).sent == 1
    assert len(server.inbox.messages) == 1


def test_starttls_with_a_percent_encoded_password(
    alice: User,
    make_server: Callable[..., SmtpServer],
    server_tls: ssl.SSLContext,
    settings: Any,
) -> None:
    server = make_server(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=accept_only("keyfob@example.com", "p@ss:w/ord"),
        auth_required=True,
        auth_require_tls=True,
    )
    server.start()
    settings.KEYFOB_SMTP_URL = server.url("smtp+starttls", "keyfob%40example.com:p%40ss%3Aw%2Ford@")
    assert send_one(alice).sent == 1
    assert len(server.inbox.messages) == 1


def test_a_wrong_smtp_password_keeps_the_notice_queued(
    alice: User,
    make_server: Callable[..., SmtpServer],
    server_tls: ssl.SSLContext,
    settings: Any,
) -> None:
    server = make_server(
        tls_context=server_tls,
        require_starttls=True,
        authenticator=accept_only("keyfob", "right"),
        auth_required=True,
        auth_require_tls=True,
    )
    server.start()
    settings.KEYFOB_SMTP_URL = server.url("smtp+starttls", "keyfob:wrong@")
    assert send_one(alice).retrying == 1
    row = Outbox.objects.get()
    assert row.state == OutboxState.QUEUED and row.last_error == "SMTPAuthenticationError 535"
    assert server.inbox.messages == []


def test_an_untrusted_certificate_is_refused(
    alice: User,
    make_server: Callable[..., SmtpServer],
    server_tls: ssl.SSLContext,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_server(ssl_context=server_tls)
    server.start()
    monkeypatch.delenv("SSL_CERT_FILE")  # back to the system's authorities
    settings.KEYFOB_SMTP_URL = server.url("smtps")
    assert send_one(alice).retrying == 1
    assert Outbox.objects.get().last_error == "SSLCertVerificationError"
    assert server.inbox.messages == []
