"""Accounts to send notices to, a fixed moment, and TLS for the SMTP tests."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.audit.notices import NoticeKind
from tests.conftest import make_user as make_account
from tests.tls import Tls, write_tls

# A fixed moment in the middle of a minute, far from any daylight-saving change.
T0 = datetime.datetime(2026, 3, 10, 14, 5, 30, tzinfo=datetime.UTC).timestamp()
# The security notices of issue 4; other apps add kinds (and their templates) of their own.
SECURITY_NOTICES = [
    NoticeKind.TWOFACTOR_ON,
    NoticeKind.TWOFACTOR_OFF,
    NoticeKind.RECOVERY_USED,
    NoticeKind.RECOVERY_REGENERATED,
    NoticeKind.WRONG_CODES,
    NoticeKind.TRUSTED_BROWSER,
    NoticeKind.PASSWORD_CHANGED,
    NoticeKind.EMAIL_CHANGED,
]
CONTEXT = Context(
    address="203.0.113.7",
    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
)


@pytest.fixture
def frozen() -> Iterator[float]:
    from keyfob.core import clock

    with clock.frozen(T0):
        yield T0


def make_user(email_address: str = "alice@example.com", **fields: Any) -> User:
    """An account without a password (notices need only its address)."""
    return make_account(email_address, None, **fields)


@pytest.fixture
def alice(db: None) -> User:
    return make_user()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return write_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server_tls(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The server side's TLS context; the client trusts its CA via SSL_CERT_FILE."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    # OpenSSL reads it each time a default context is made: Keyfob's client trusts it.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    return context
