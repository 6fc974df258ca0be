"""Issue 22 under concurrency, each thread on its own connection: the same link request
sent at once is asked (and mailed) once, a server's share of an account's requests holds,
and two accounts linking one login at once leave one link. On PostgreSQL the account's row
lock does it (on SQLite, IMMEDIATE transactions serialise writers anyway)."""

from __future__ import annotations

import pytest

from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import SshLinkRequest, SshLogin
from keyfob.audit.events import Context
from keyfob.audit.models import Channel, NoticeKind, Outbox
from keyfob.core import clock
from tests.accounts.test_lock_races import recent_request
from tests.audit.test_concurrency import in_threads
from tests.conftest import PASSWORD, T0

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CLI = Context(channel=Channel.API)


def test_the_same_request_at_once_is_asked_once() -> None:
    User.objects.create_user("alice@example.com", PASSWORD)
    with clock.frozen(T0):
        states = in_threads(8, lambda _i: flows.request_link("alice@example.com", "a", "w1", CLI))
    assert {state for state, _row in states} == {flows.LinkState.PENDING}
    assert SshLinkRequest.objects.count() == 1
    assert Outbox.objects.filter(kind=NoticeKind.SSH_LINK_REQUESTED).count() == 1


def test_a_servers_share_holds_at_once() -> None:
    User.objects.create_user("alice@example.com", PASSWORD)
    n = flows.MAX_REQUESTS_PER_SERVER + 4
    with clock.frozen(T0):
        in_threads(n, lambda i: flows.request_link("alice@example.com", f"l{i}", "w1", CLI))
    assert SshLinkRequest.objects.count() == flows.MAX_REQUESTS_PER_SERVER


def test_two_accounts_linking_one_login_at_once_leave_one_link() -> None:
    people = [User.objects.create_user(f"u{i}@example.com", PASSWORD) for i in range(4)]
    with clock.frozen(T0):
        for person in people:
            flows.request_link(person.email, "shared", "w1", CLI)
        asked = {r.user_id: r.pk for r in SshLinkRequest.objects.all()}
        requests = [recent_request(person) for person in people]

        def confirm(i: int) -> str:
            try:
                flows.confirm_request(requests[i], people[i], asked[people[i].pk])
            except (flows.ApiError, SshLinkRequest.DoesNotExist):
                return "refused"
            return "linked"

        results = in_threads(len(people), confirm)
    assert SshLogin.objects.count() == 1
    assert sorted(results).count("linked") == 1
    assert not SshLinkRequest.objects.exists()
