"""Customers with 2FA and staff with 2FA, for the support desk's tests.

The browser tests are in tests/support/test_browser_desk.py: one Playwright per test run.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from keyfob.accounts.models import AccountKind, User
from keyfob.audit.events import Context
from tests.conftest import PASSWORD, Enrolled, enrol, make_user, prove_for_client

T0 = 1_900_000_005.0  # the middle of a 30-second step
STAFF_CONTEXT = Context(address="198.51.100.20", user_agent="staff browser")
SITE = "http://testserver"
__all__ = ["PASSWORD", "Enrolled"]  # imported from here by the support tests


def enrolled(email: str, **fields: Any) -> Enrolled:
    """An account with 2FA on, through the Security page's flows."""
    return enrol(make_user(email, **fields))


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


def client_for(user: User, *, phishing_resistant: bool = True) -> Client:
    """A client signed in as ``user``, by default as if with a security key or passkey:
    what staff pages need (KEYFOB_STAFF_PHISHING_RESISTANT, on; its own tests are in
    tests/support/test_staff_rule.py). ``phishing_resistant=False``: as if with a code."""
    client = Client()
    client.force_login(user)
    prove_for_client(client, user, "security_key" if phishing_resistant else "code")
    return client


@pytest.fixture
def sam_client(sam: Enrolled) -> Client:
    return client_for(sam.user)


@pytest.fixture
def tess_client(tess: Enrolled) -> Client:
    return client_for(tess.user)
