"""Statements compiled once per process (keyfob.core.compiled) send what the ORM compiles
today: for every statement Keyfob makes, the SQL and parameters it runs for some values are
the ones Django's ORM compiles for the same values (issue 23)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import F

from keyfob.api import flows as api_flows
from keyfob.audit.models import EventKind
from keyfob.core import clock, compiled, throttle
from keyfob.core.models import Throttle
from keyfob.twofactor.flows import verify
from keyfob.twofactor.models import Authenticator
from tests.api.conftest import Api
from tests.conftest import Enrolled

pytestmark = pytest.mark.django_db

# Slots the ORM writes as IS NULL (a condition) or NULL (a value) when given None.
NULLABLE = ("was_locked", "was_failed", "locked_until", "address")


def value_like(sample: object, n: int) -> object:
    """A real value of ``sample``'s kind, unlike the sample."""
    if isinstance(sample, datetime):
        return clock.now() - timedelta(seconds=n)
    if isinstance(sample, ipaddress.IPv4Address):
        return "2001:db8::7"
    if isinstance(sample, int):
        return 42 + n
    if isinstance(sample, str):
        return f"value-{n}"
    if isinstance(sample, dict):
        return {"login": "alice", "n": n}
    raise TypeError(sample)


def cases() -> list[tuple[compiled.Statement, dict[str, object]]]:
    assert api_flows and throttle and verify  # the modules that make statements, imported
    out = []
    for statement in compiled.Statement.made:
        values = {name: value_like(s, n) for n, (name, s) in enumerate(statement.samples.items())}
        if "kind" in values:  # an event's kind is checked on save: a real one
            values["kind"] = str(EventKind.CODE_REUSED)
        out.append((statement, values))
        nulls = {name: None for name in NULLABLE if name in values}
        if nulls:
            out.append((statement, {**values, **nulls}))
    return out


def unwrap(params: list[Any]) -> list[Any]:
    # A JSON value reaches PostgreSQL's driver wrapped (psycopg's Jsonb: no equality).
    return [getattr(p, "obj", p) for p in params]


def test_every_statement_is_the_sql_the_orm_compiles_today() -> None:
    checked = cases()
    for statement, values in checked:
        sql, params = statement.params(connection.alias, values)
        orm_sql, orm_params = compiled.orm_sql(connection.alias, statement.build, values)
        assert sql == orm_sql
        assert unwrap(params) == unwrap(orm_params)
    # The token, the apps; the throttle's read, first count, count and failure; the
    # consumes of a TOTP step and an HOTP counter; the event (and their NULL forms).
    assert len({id(s) for s, _values in checked}) >= 9


def test_a_value_worked_out_from_a_parameter_is_refused() -> None:
    # counter=after + 1 would be compiled as a constant (the stand-in + 1): refused.
    statement = compiled.Update(
        lambda pk, after: Authenticator.objects.filter(pk=pk).update(counter=after + 1),
        pk=0,
        after=0,
    )
    compiled.Statement.made.remove(statement)
    with pytest.raises(AssertionError, match="parameter"):
        statement.params(connection.alias, {"pk": 1, "after": 2})


def test_rows_are_read_afresh_each_time(api: Api, linked: Enrolled) -> None:
    """No row is kept between runs: a revoked token or a disabled account stops at once."""
    key = api.server.key
    assert [t.name for t in api_flows._TOKEN.rows({"key": key})] == ["web1"]
    assert len(list(api_flows._APPS.rows({"login": "alice", "server": "web1"}))) == 1
    type(linked.user).objects.filter(pk=linked.user.pk).update(is_active=False)
    assert list(api_flows._APPS.rows({"login": "alice", "server": "web1"})) == []
    assert api_flows.revoke_token("web1")
    assert list(api_flows._TOKEN.rows({"key": key})) == []


def test_a_failure_counted_without_the_lock_needs_the_counters_unchanged() -> None:
    key = "test-key"
    seen = throttle.peek(throttle.CODE, key)
    assert seen.pk is None
    with transaction.atomic():
        assert throttle.count_unchanged(throttle.CODE, key, seen)
    seen = throttle.peek(throttle.CODE, key)
    assert (seen.consecutive, seen.recent) == (1, 1)
    # Counted meanwhile by another attempt: the same reading no longer counts.
    Throttle.objects.filter(pk=seen.pk).update(consecutive=F("consecutive") + 1)
    with transaction.atomic():
        assert not throttle.count_unchanged(throttle.CODE, key, seen)
    assert Throttle.objects.get(pk=seen.pk).consecutive == 2
