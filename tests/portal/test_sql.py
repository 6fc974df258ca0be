"""keyfob.sql, the plain SQL of the code-check path: it must read and write exactly what the
ORM reads and writes, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from keyfob import clock, sql
from keyfob.accounts import throttle
from keyfob.accounts.models import Throttle, User
from keyfob.api import flows as api_flows
from keyfob.api.models import SshLogin
from keyfob.audit.events import Context, record
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.twofactor.models import Authenticator
from tests.portal.conftest import Enrolled

AT = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def test_aware_reads_text_naive_and_aware_datetimes() -> None:
    assert sql.aware(None) is None
    assert sql.aware("2026-03-04 05:06:07.891011") == AT
    assert sql.aware(AT.replace(tzinfo=None)) == AT
    assert sql.aware(AT) == AT
    with pytest.raises(ValueError, match="not a datetime"):
        sql.aware("yesterday")
    with pytest.raises(TypeError, match="not a datetime"):
        sql.aware(12)


@pytest.mark.django_db
def test_load_reads_every_field_as_the_orm_does(user_with_totp: Enrolled) -> None:
    user = user_with_totp.user
    User.objects.filter(pk=user.pk).update(last_login=AT, is_staff=True)
    orm = User.objects.get(pk=user.pk)
    raw = sql.load(User, "id = %s", [user.pk])
    assert raw is not None and not raw._state.adding
    for field in User._meta.concrete_fields:
        assert getattr(raw, field.attname) == getattr(orm, field.attname), field.name
    assert raw.is_staff is True and raw.last_login == AT
    assert sql.load(User, "id = %s", [user.pk + 1000]) is None
    # A loaded row saves like one the ORM read (an UPDATE, not a second INSERT).
    raw.display_name = "Alice B."
    raw.save(update_fields=["display_name"])
    assert User.objects.get(pk=user.pk).display_name == "Alice B."


@pytest.mark.django_db
def test_load_join_gives_none_for_a_missed_outer_join(user_with_totp: Enrolled) -> None:
    enrolled = user_with_totp.user
    bare = User.objects.create_user("bob@example.com", "x" * 12)
    SshLogin.objects.create(login="alice", server="", user=enrolled)
    SshLogin.objects.create(login="bob", server="", user=bare)
    SshLogin.objects.create(login="alice", server="web1", user=bare)

    found = api_flows.account_for("alice", "db1")
    assert found is not None
    user, auth = found
    assert user.pk == enrolled.pk
    assert auth is not None and auth.pk == Authenticator.objects.get(user=enrolled).pk
    assert auth.secret() == user_with_totp.secret
    # The server's own link wins over the link for every server.
    found = api_flows.account_for("alice", "web1")
    assert found is not None and found[0].pk == bare.pk and found[1] is None
    found = api_flows.account_for("bob", "db1")
    assert found is not None and found[0].pk == bare.pk and found[1] is None
    assert api_flows.account_for("carol", "db1") is None
    User.objects.filter(pk=bare.pk).update(is_active=False)
    assert api_flows.account_for("bob", "db1") is None


@pytest.mark.django_db
def test_load_join_reads_only_the_fields_asked_and_defers_the_rest(
    user_with_totp: Enrolled,
) -> None:
    user = user_with_totp.user
    User.objects.filter(pk=user.pk).update(display_name="Alice", last_login=AT)
    found = sql.load_join(
        (User, Authenticator),
        f"FROM {sql.table(User)} t0 JOIN {sql.table(Authenticator)} t1 "
        "ON t1.user_id = t0.id WHERE t0.id = %s",
        [user.pk],
        only={User: ("id", "email", "is_active")},
    )
    assert found is not None
    raw, auth = found
    assert isinstance(raw, User) and isinstance(auth, Authenticator)
    assert raw.get_deferred_fields() == {
        f.attname for f in User._meta.concrete_fields if f.name not in ("id", "email", "is_active")
    }
    assert auth.get_deferred_fields() == set()
    assert (raw.email, raw.is_active) == (user.email, True)
    # A deferred field loads on access, as after the ORM's only().
    assert (raw.display_name, raw.last_login) == ("Alice", AT)
    assert auth.secret() == user_with_totp.secret


@pytest.mark.django_db
def test_moment_is_stored_as_the_orm_stores_it(user: User) -> None:
    """A datetime written through sql.moment compares, sorts and reads like an ORM one."""
    with transaction.atomic():
        row = throttle.acquire(throttle.CODE, str(user.pk))
    Throttle.objects.filter(pk=row.pk).update(locked_until=AT)
    later = AT + timedelta(microseconds=1)
    assert (
        sql.count(
            f"UPDATE {sql.table(Throttle)} SET last_failure_at = %s WHERE id = %s",  # noqa: S608
            [sql.moment(later), row.pk],
        )
        == 1
    )
    stored = Throttle.objects.get(pk=row.pk)
    assert stored.last_failure_at == later
    assert Throttle.objects.filter(pk=row.pk, last_failure_at__gt=AT).exists()
    assert not Throttle.objects.filter(pk=row.pk, last_failure_at__gt=later).exists()


@pytest.mark.django_db
def test_acquire_makes_the_row_once_and_reads_its_counters(user: User) -> None:
    key = str(user.pk)
    with transaction.atomic():
        first = throttle.acquire(throttle.CODE, key)
    assert (first.consecutive, first.locked_until, first.last_failure_at) == (0, None, None)
    Throttle.objects.filter(pk=first.pk).update(consecutive=3, locked_until=AT)
    with transaction.atomic():
        again = throttle.acquire(throttle.CODE, key)
    assert again.pk == first.pk and not again._state.adding
    assert (again.consecutive, again.locked_until) == (3, AT)
    assert Throttle.objects.filter(scope="code", key=key).count() == 1


@pytest.mark.django_db
def test_record_writes_the_event_the_orm_reads(user: User) -> None:
    context = Context(channel=Channel.SSH, address="2001:db8::7", user_agent="ssh:web1")
    with clock.frozen(AT.timestamp()):
        record(user, EventKind.SIGNIN_OK, context, login="alice", factor="code", n=2)
    event = SecurityEvent.objects.get(user=user)
    assert event.kind == EventKind.SIGNIN_OK and event.channel == "ssh"
    assert event.address == "2001:db8::7" and event.user_agent == "ssh:web1"
    assert event.detail == {"login": "alice", "factor": "code", "n": 2}
    assert event.at == AT
