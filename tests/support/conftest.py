"""Customers with 2FA and staff with 2FA, for the support desk's tests.

The browser tests are in tests/browser/test_support_desk.py: one Playwright per test run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from keyfob import otp
from keyfob.accounts.models import AccountKind, User
from keyfob.audit.events import Context
from keyfob.core import clock
from keyfob.twofactor.models import Authenticator

PASSWORD = "correct horse battery staple"
T0 = 1_900_000_005.0  # the middle of a 30-second step
STAFF_CONTEXT = Context(address="198.51.100.20", user_agent="staff browser")
SITE = "http://testserver"


@dataclass
class Enrolled:
    user: User
    secret: bytes

    @property
    def b32(self) -> str:
        return otp.b32encode_secret(self.secret)

    def code(self, at: float | None = None) -> str:
        return otp.totp(self.secret, clock.time() if at is None else at)


def enrolled(email: str, **fields: Any) -> Enrolled:
    """An account with a confirmed authenticator (and the secret, to make codes)."""
    fields.setdefault("display_name", email.split("@")[0].title())
    user = User.objects.create_user(email, PASSWORD, **fields)
    secret = otp.random_secret()
    auth = Authenticator(user=user)
    auth.set_secret(secret)
    auth.confirmed_at = clock.now()
    auth.save()
    return Enrolled(user, secret)


@pytest.fixture
def alice(db: None) -> Enrolled:
    return enrolled("alice@example.com", phone="+33123456789")


@pytest.fixture
def acme(db: None) -> Enrolled:
    return enrolled("boss@acme.example", phone="+33198765432", kind=AccountKind.COMPANY)


@pytest.fixture
def sam(db: None) -> Enrolled:
    return enrolled("sam@support.example", is_staff=True)


@pytest.fixture
def tess(db: None) -> Enrolled:
    return enrolled("tess@support.example", is_staff=True)


def client_for(user: User) -> Client:
    """A client signed in as ``user`` (the staff guard checks the account uses 2FA)."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sam_client(sam: Enrolled) -> Client:
    return client_for(sam.user)


@pytest.fixture
def tess_client(tess: Enrolled) -> Client:
    return client_for(tess.user)
