"""Row locks of the authenticator flows, proven where they can fail: on PostgreSQL (issue
21). On SQLite, Keyfob's IMMEDIATE transactions serialise writers, so these pass there
with or without the lock; CI's PostgreSQL run has them (marked ``postgres``). Each was seen
failing on PostgreSQL with its lock removed."""

from __future__ import annotations

import pytest

from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor import flows
from keyfob.twofactor.models import Authenticator
from tests.audit.test_concurrency import in_threads
from tests.conftest import T0, confirmed_request, enrol, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CTX = Context()


def test_removing_two_apps_at_once_leaves_one() -> None:
    """authenticators._locked: each removal counts the others under their rows' lock,
    so two at once cannot each see the other still there."""
    alice = make_user("alice@example.com")
    enrol(alice, name="Phone")
    enrol(alice, name="Tablet")
    apps = list(Authenticator.objects.filter(user=alice).values_list("pk", flat=True))

    def remove_one(i: int) -> str:
        try:
            return flows.remove(request, alice, flows.Family.APP, apps[i], CTX).label
        except flows.LastAuthenticator:
            return "last"

    with clock.frozen(T0):
        request = confirmed_request(alice)
        results = in_threads(2, remove_one)
    assert sorted(results).count("last") == 1, results
    assert Authenticator.objects.filter(user=alice, confirmed_at__isnull=False).count() == 1


def test_renaming_at_once_records_each_name_it_replaced() -> None:
    """authenticators.rename: the old name is read under the row's lock, so the activity's chain of
    names has no gap (two at once do not both say they replaced the first name)."""
    alice = make_user("alice@example.com")
    enrol(alice, name="Phone")
    pk = Authenticator.objects.get(user=alice).pk
    names = [f"Name {i}" for i in range(4)]
    with clock.frozen(T0):
        in_threads(len(names), lambda i: flows.rename(alice, flows.Family.APP, pk, names[i], CTX))
    renames = SecurityEvent.objects.filter(user=alice, kind=EventKind.AUTHENTICATOR_RENAMED)
    olds = sorted(str(e.detail["old"]) for e in renames)
    news = sorted(str(e.detail["name"]) for e in renames)
    final = Authenticator.objects.get(pk=pk).label
    # Each name but the last was replaced exactly once, "Phone" first.
    assert sorted([*news, "Phone"]) == sorted([*olds, final]), (olds, news)
