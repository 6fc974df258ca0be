"""ORM statements compiled once per process, run again with new values (issue 23).

Django compiles a queryset into SQL each time it runs: it resolves every lookup, builds the
WHERE tree and renders it. For the few statements of a code check that costs more than
running them (0.3 to 1.2 ms of Python each, against tens of microseconds in the database).
A :class:`Statement` is written with the ORM as usual; the first time a process runs it on a
database, the ORM compiles it, and later runs send the same SQL with their own values.

Only the SQL text is kept, never a row: every run reads and writes the database afresh, so a
revoked token or a disabled account stops at once. The text is the ORM's (no SQL is written
by hand), and ``tests/core/test_compiled.py`` checks, for each statement in use, that it is
what the ORM compiles today for the same values.

How a statement is compiled: ``build`` is called with stand-in values (one per parameter,
each of its sample's type and unlike any real value) under an execute wrapper (Django's
database instrumentation) that takes the SQL and its parameters instead of running them.
The parameters that are stand-ins are the statement's slots; the rest are the ORM's own
constants. A ``None`` value changes the SQL itself (``IS NULL``), so each pattern of ``None``
values is compiled apart.

Call a statement outside a write transaction the first time (the flows build theirs before
theirs starts): compiling runs no SQL, but its first run on a connection may connect.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from django.db import connections, models

M = TypeVar("M", bound=models.Model)
# A SQL text and its parameters, some of them slots: (index in the parameters, name).
Compiled = tuple[str, list[Any], list[tuple[int, str]]]


class _Captured(BaseException):
    """Raised by the capturing wrapper instead of running the statement.

    A BaseException, not an Exception: Django's ``mark_for_rollback_on_error`` (around
    ``update()`` and ``save()``) lets it pass without marking an enclosing transaction for
    rollback, since nothing ran.
    """

    def __init__(self, sql: str, params: Any) -> None:
        super().__init__("captured")
        self.sql = sql
        self.params = list(params or ())


def _capture(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    raise _Captured(sql, params)


_serial = itertools.count(1)
# Adapts an IP address as a GenericIPAddressField does (PostgreSQL's driver takes an object).
_IP_FIELD: models.GenericIPAddressField[str | None, str | None] = models.GenericIPAddressField()


_TEXT_STAND_IN = "\x00keyfob-slot-"


def is_stand_in(value: object) -> bool:
    """Whether ``value`` is a text stand-in of a statement being compiled (a field that
    checks its values on save lets it pass: the real value is checked where it is made)."""
    return isinstance(value, str) and value.startswith(_TEXT_STAND_IN)


def _stand_in(sample: object) -> object:
    """A value of ``sample``'s type that no real parameter takes."""
    n = next(_serial)
    if isinstance(sample, bool):
        raise TypeError("a boolean cannot be told apart from a constant: make it a constant")
    if isinstance(sample, int):
        # Within a 32-bit integer column's range: out of it, Django 5 compiles no SQL at all.
        return 2_000_000_000 + n * 7919 % 100_000_000
    if isinstance(sample, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(ipaddress.ip_address("2001:db8:7340::") + n)  # documentation range
    if isinstance(sample, str):
        return f"{_TEXT_STAND_IN}{n}\x00"
    if isinstance(sample, datetime):
        return datetime(2999, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
    if isinstance(sample, dict):
        return {"\x00keyfob-slot": n}
    raise TypeError(f"no stand-in for a {type(sample).__name__}")


def _adapt(connection: Any, sample: object, value: object) -> object:
    """``value`` as the ORM hands it to the driver, for a parameter of ``sample``'s type (a
    lookup's value or a saved field's: the same for the types a slot takes)."""
    if isinstance(sample, dict):
        return connection.ops.adapt_json_value(value, None)
    if isinstance(sample, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return _IP_FIELD.get_db_prep_value(value, connection)
    return connection.ops.adapt_unknown_value(value)


def _same(param: object, adapted: object, stand_in: object) -> bool:
    # A JSON value reaches PostgreSQL's driver wrapped (psycopg's Jsonb keeps it in .obj).
    return param == adapted or getattr(param, "obj", None) == stand_in


def orm_sql(
    using: str, build: Callable[..., object], values: dict[str, object]
) -> tuple[str, list[Any]]:
    """The SQL and parameters the ORM compiles for ``build(**values)``, not run."""
    try:
        with connections[using].execute_wrapper(_capture):
            build(**values)
    except _Captured as captured:
        return captured.sql, captured.params
    raise AssertionError("the statement ran no SQL")


class Statement:
    """One ORM statement, compiled once per process and database (and pattern of ``None``
    values), run again with new values.

    ``build(**values)`` runs the statement with the ORM (a queryset evaluated, an
    ``update()``, a ``create()``); ``samples`` name its parameters, each with a value of the
    type it takes (an ``ipaddress`` object for an IP address given as text). A ``create()``
    names every field whose default is worked out at each save (a time): a default would
    be worked out once, when compiled. Use :class:`Select`, :class:`Update` or :class:`Insert`.
    """

    # Every statement made, for tests/core/test_compiled.py to check against the ORM.
    made: list[Statement] = []

    def __init__(self, build: Callable[..., object], **samples: object) -> None:
        self.build = build
        self.samples = samples
        self._compiled: dict[tuple[str, frozenset[str]], Compiled] = {}
        Statement.made.append(self)

    def compiled(self, using: str, values: dict[str, object]) -> Compiled:
        """The SQL, parameters and slots for ``values``' pattern of ``None`` values."""
        nones = frozenset(name for name, value in values.items() if value is None)
        key = (using, nones)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._compile(using, nones)
        return found

    def _compile(self, using: str, nones: frozenset[str]) -> Compiled:
        """Compile twice, with two sets of stand-ins: a value worked out from a parameter
        inside ``build`` (``counter=matched + 1``) would otherwise be kept as a constant, so
        the two must differ only in their slots."""
        first, second = self.capture(using, nones), self.capture(using, nones)
        sql, params, slots = first
        fixed = [i for i in range(len(params)) if i not in dict(slots)]
        if (sql, slots) != second[::2] or any(params[i] != second[1][i] for i in fixed):
            raise AssertionError("a value is worked out from a parameter: make it one")
        return first

    def capture(self, using: str, nones: frozenset[str]) -> Compiled:
        """Compile with stand-ins (None for ``nones``): the SQL, parameters and slots."""
        connection = connections[using]
        stand_ins = {
            name: None if name in nones else _stand_in(sample)
            for name, sample in self.samples.items()
        }
        sql, params = orm_sql(using, self.build, stand_ins)
        slots: list[tuple[int, str]] = []
        for name, stand_in in stand_ins.items():
            if stand_in is None:
                continue
            adapted = _adapt(connection, self.samples[name], stand_in)
            at = [i for i, param in enumerate(params) if _same(param, adapted, stand_in)]
            if not at:
                raise AssertionError(f"{name!r} is not a parameter of the compiled SQL")
            slots.extend((i, name) for i in at)
        return sql, params, sorted(slots)

    def params(self, using: str, values: dict[str, object]) -> tuple[str, list[Any]]:
        """The SQL and parameters to run for ``values``."""
        unknown = set(values) ^ set(self.samples)
        assert not unknown, f"values and parameters differ: {sorted(unknown)}"
        sql, template, slots = self.compiled(using, values)
        connection = connections[using]
        params = list(template)
        for index, name in slots:
            params[index] = _adapt(connection, self.samples[name], values[name])
        return sql, params


# How a Select's rows become model instances: the fields' names in the model's order, the
# positions of their columns, the annotations' names and positions, and each column's
# converters (what the ORM applies to a value read: SQLite's times made aware, JSON decoded).
Plan = tuple[list[str], list[int], list[tuple[str, int]], list[list[Any]]]


class Select(Statement, Generic[M]):
    """A query of ``model`` rows; ``build`` returns the queryset (unevaluated)."""

    def __init__(self, model: type[M], build: Callable[..., models.QuerySet[M]], **samples: object):
        super().__init__(lambda **values: list(build(**values)), **samples)
        self.model = model
        self._plans: dict[tuple[str, str], Plan] = {}

    def rows(self, values: dict[str, object], using: str = "default") -> Iterator[M]:
        """The rows for ``values``, as ``model`` instances with the columns the query
        selects (the others deferred, as with ``.only()``) and its annotations as
        attributes (made with ``Model.from_db``, as the ORM makes them)."""
        sql, params = self.params(using, values)
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
            if not fetched:
                return iter(())
            plan = self._plans.get((using, sql))
            if plan is None:
                names = [column[0] for column in cursor.description]
                plan = self._plans[(using, sql)] = self._plan(connection, names)
        return (self._instance(using, connection, plan, row) for row in fetched)

    def _plan(self, connection: Any, names: list[str]) -> Plan:
        by_column = {f.column: f for f in self.model._meta.concrete_fields}
        assert self.model._meta.pk is not None and self.model._meta.pk.column in names
        fields: list[str] = []
        positions: list[int] = []
        extra: list[tuple[str, int]] = []
        converters: list[list[Any]] = []
        for position, name in enumerate(names):
            field = by_column.get(name)
            if field is None:
                extra.append((name, position))
                converters.append([])
                continue
            col = field.get_col(self.model._meta.db_table)
            # As the ORM's compiler: the backend's converters, then the field's.
            made = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            converters.append([(converter, col) for converter in made])
        order = {f.column: i for i, f in enumerate(self.model._meta.concrete_fields)}
        for position, name in sorted(enumerate(names), key=lambda p: order.get(p[1], -1)):
            if name in by_column:
                fields.append(by_column[name].attname)
                positions.append(position)
        return fields, positions, extra, converters

    def _instance(self, using: str, connection: Any, plan: Plan, row: Any) -> M:
        fields, positions, extra, converters = plan
        values = list(row)
        for position, each in enumerate(converters):
            for converter, col in each:
                values[position] = converter(values[position], col, connection)
        instance = self.model.from_db(using, fields, [values[p] for p in positions])
        for name, position in extra:
            setattr(instance, name, values[position])
        return instance


class Update(Statement):
    """An UPDATE; ``build`` calls the queryset's ``update()``."""

    def run(self, values: dict[str, object], using: str = "default") -> int:
        """Run it with ``values``; return how many rows it changed."""
        sql, params = self.params(using, values)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)


class Insert(Statement):
    """An INSERT of one row; ``build`` calls ``create()``."""

    def run(self, values: dict[str, object], using: str = "default") -> object:
        """Run it with ``values``; return the new row's primary key."""
        sql, params = self.params(using, values)
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)  # INSERT … RETURNING the key (SQLite, PostgreSQL)
            return cursor.fetchone()[0]
