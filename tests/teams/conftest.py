"""Owners, members and invitations, built through the real flows."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from keyfob.accounts.models import User
from keyfob.api.models import SshLogin
from keyfob.audit import notices
from keyfob.audit.models import NoticeKind, Outbox
from keyfob.teams import flows
from keyfob.teams.models import Invitation, Rule
from tests.conftest import confirmed_request, make_user


def plain_request(user: User) -> Any:
    """A request of ``user``'s, signed in with the password only, long ago (no recent
    confirmation)."""
    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="tests")
    request.session = SessionStore()
    request.user = user
    return request


def invitation_code(email: str) -> str:
    """The code of the latest invitation mailed to ``email``, read as its recipient reads it."""
    row = Outbox.objects.filter(to=email, kind=NoticeKind.TEAM_INVITATION).order_by("-pk")[0]
    found = re.search(r"^\s+(\d{4}) (\d{4})$", notices.render(row).text, re.MULTILINE)
    assert found, notices.render(row).text
    return found.group(1) + found.group(2)


@pytest.fixture
def owner(db: None) -> User:
    owner = make_user("olivia@example.com", display_name="Olivia")
    SshLogin.objects.create(login="deploy", server="web1", user=owner)
    SshLogin.objects.create(login="backup", server="db1", user=owner)
    return owner


@pytest.fixture
def member(db: None) -> User:
    return make_user("max@example.com", display_name="Max")


def invite(owner: User, email: str = "max@example.com", **terms: Any) -> Invitation:
    terms.setdefault("rights", ["technical"])
    terms.setdefault("logins", [["deploy", "web1"]])
    terms.setdefault("rule", Rule.TWO_FACTOR)
    terms.setdefault("grace_days", 0)
    return flows.invite(confirmed_request(owner), email, **terms)


@pytest.fixture
def invitation(owner: User, member: User) -> Invitation:
    return invite(owner)
