"""Fixtures that build ready state: accounts with and without 2FA, a client past a step."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.test import Client

from keyfob import clock, otp
from keyfob.accounts.models import User
from keyfob.twofactor.models import Authenticator

PASSWORD = "correct horse battery staple"

# A fixed moment in the middle of a 30-second step, so a test's codes never straddle two.
T0 = (int(time.time()) // 30) * 30 + 15.0


@dataclass
class Enrolled:
    user: User
    secret: bytes

    def code(self, at: float | None = None) -> str:
        return otp.totp(self.secret, clock.time() if at is None else at)


@pytest.fixture
def frozen_time() -> Iterator[float]:
    with clock.frozen(T0):
        yield T0


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user(
        "alice@example.com", PASSWORD, display_name="Alice", phone="+33123456789"
    )


@pytest.fixture
def user_with_totp(user: User) -> Enrolled:
    secret = otp.random_secret()
    auth = Authenticator(user=user)
    auth.set_secret(secret)
    auth.confirmed_at = clock.now()
    auth.save()
    return Enrolled(user, secret)


def password_step(client: Client, email: str = "alice@example.com", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return client.post("/login/", {"email": email, "password": password})


def setup_page(client: Client, kind: str = "totp") -> str:
    """Press the setup page's button that creates the key (a POST); the page it shows."""
    response = client.post("/account/security/setup/", {"kind": kind})
    assert response.status_code == 302 and response["Location"] == "/account/security/setup/"
    return client.get("/account/security/setup/").content.decode()


@pytest.fixture
def pending_client(client: Client, user_with_totp: Enrolled, frozen_time: float) -> Client:
    """A client past the password step of an account with 2FA."""
    response = password_step(client)
    assert response.status_code == 302 and response["Location"] == "/login/code/"
    return client


def emailed_code(user: User) -> str:
    """The code of the latest e-mail confirmation notice, read as its recipient reads it."""
    import re

    from keyfob.audit import notices
    from keyfob.audit.models import NoticeKind, Outbox

    row = Outbox.objects.filter(user=user, kind=NoticeKind.EMAIL_CONFIRM).order_by("-pk")[0]
    found = re.search(r"^\s+(\d{4}) (\d{4})$", notices.render(row).text, re.MULTILINE)
    assert found, notices.render(row).text
    return found.group(1) + found.group(2)
