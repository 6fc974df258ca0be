"""Plain SQL for the few statements on the code-check path (portal, SSH and API alike).

A code check is a handful of single-row statements. Through the ORM each one costs more
Python (building and compiling the query) than the database spends on it, and the check is
what an SSH server waits for at every login, so these statements are written out here,
once, in the SQL that SQLite (3.35 and later) and PostgreSQL both accept. Everything else
stays on the ORM.

Datetimes go in through the backend's own adapter (SQLite stores naive UTC text, the same
as the ORM writes) and come back aware in UTC, whichever backend read them. Values are
always parameters; the only names formatted into the SQL are tables and columns taken from
the models (hence the ``noqa: S608`` where a statement is built).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=models.Model)


@functools.cache
def table(model: type[models.Model]) -> str:
    """The model's table name, quoted (the same in SQLite and PostgreSQL)."""
    return connection.ops.quote_name(model._meta.db_table)


def moment(value: datetime | None) -> Any:
    """A datetime as a query parameter, stored exactly as the ORM stores it."""
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


def aware(value: object) -> datetime | None:
    """A datetime read from a raw cursor (text or naive on SQLite), aware in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"not a datetime: {value!r}")
        value = parsed
    if not isinstance(value, datetime):
        raise TypeError(f"not a datetime: {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def row(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run one statement; return its first row (None when it has none)."""
    cursor = _execute(sql, params)
    try:
        found = cursor.fetchone()
    finally:
        cursor.close()
    return None if found is None else tuple(found)


def count(sql: str, params: Sequence[Any]) -> int:
    """Run one statement that changes rows; return how many it changed."""
    cursor = _execute(sql, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _execute(sql: str, params: Sequence[Any]) -> Any:
    """Run ``sql`` on the driver's own cursor, with Django's checks and error classes.

    Django's cursor wrapper would add, per statement, about as much Python as SQLite spends
    on one of these statements: its query log, thread check and placeholder rewriting.
    The checks that matter are kept: no statement in a transaction already marked for
    rollback, and the driver's errors raised as Django's (the views answer 503 on those).
    """
    db = connections[DEFAULT_DB_ALIAS]
    db.validate_no_broken_transaction()
    db.ensure_connection()
    with db.wrap_database_errors:
        cursor = db.connection.cursor()
        cursor.execute(_native(sql, db.vendor), params)
    return cursor


@functools.lru_cache(maxsize=256)
def _native(sql: str, vendor: str) -> str:
    """``sql`` in the driver's placeholder style (SQLite's ``?`` for ``%s``)."""
    if vendor != "sqlite":
        return sql
    assert "%%" not in sql and "?" not in sql, "plain SQL here has only %s placeholders"
    return sql.replace("%s", "?")


def load(model: type[M], where: str, params: Sequence[object]) -> M | None:
    """The one ``model`` row matching ``where`` (SQL with %s placeholders), or None.

    Reads every concrete column and converts what a raw cursor leaves unconverted (SQLite's
    datetimes and booleans); the model must have no other field needing a converter.
    """
    _fields_read, names, converters = _fields(model)
    columns = _columns(model, "", connection.vendor)
    found = row(f"SELECT {columns} FROM {table(model)} WHERE {where}", params)  # noqa: S608
    return None if found is None else _instance(model, names, converters, found)


def load_join(
    kinds: tuple[type[models.Model], ...],
    source: str,
    params: Sequence[object],
    only: dict[type[models.Model], tuple[str, ...]] | None = None,
) -> list[models.Model | None] | None:
    """The first row of a join, as one instance per model (None for a missed outer join).

    ``source`` is the SQL after the column list (``FROM … WHERE …``), in which the tables
    of ``kinds`` are aliased ``t0``, ``t1``, … in order. ``only`` names the fields to read
    of a model (its primary key first); the others are left deferred, as the ORM's
    ``only()`` leaves them. Returns None when there is no row.
    """
    only = only or {}
    parts = [(model, *_fields(model, only.get(model))) for model in kinds]
    found = row(join_select(kinds, source, only), params)
    if found is None:
        return None
    out: list[models.Model | None] = []
    start = 0
    for model, _fields_read, names, converters in parts:
        values = found[start : start + len(names)]
        start += len(names)
        # The primary key is never NULL in a row that exists.
        out.append(None if values[0] is None else _instance(model, names, converters, values))
    return out


def join_select(
    kinds: tuple[type[models.Model], ...],
    source: str,
    only: dict[type[models.Model], tuple[str, ...]] | None = None,
) -> str:
    """The SELECT :func:`load_join` runs: the columns of ``kinds`` (``only`` some), in
    order, then ``source``."""
    only = only or {}
    vendor = connection.vendor
    columns = ", ".join(
        _columns(model, f"t{i}.", vendor, only.get(model)) for i, model in enumerate(kinds)
    )
    return f"SELECT {columns} {source}"


def _instance(model: type[M], names: list[str], converters: Converters, values: Any) -> M:
    converted = [
        value if convert is None or value is None else convert(value)
        for convert, value in zip(converters, values, strict=True)
    ]
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(DEFAULT_DB_ALIAS, names, converted)
    # What from_db() builds, without the generic argument handling of Model.__init__
    # (a third of the cost of reading a row): the fields read are set, the others stay
    # deferred and load on access.
    instance = model.__new__(model)
    state = instance._state = ModelState()
    state.adding, state.db = False, DEFAULT_DB_ALIAS
    instance.__dict__.update(zip(names, converted, strict=True))
    return instance


# Per column, what turns a raw cursor's value into the field's Python value (None: as is).
Converters = tuple[Callable[[Any], object] | None, ...]


@functools.cache
def _fields(
    model: type[models.Model], only: tuple[str, ...] | None = None
) -> tuple[tuple[models.Field[Any, Any], ...], list[str], Converters]:
    """A model's concrete fields (primary key first; ``only`` these if given), their
    attribute names and their converters."""
    fields = tuple(
        field
        for field in model._meta.concrete_fields
        if only is None or field.name in only or field.attname in only
    )
    assert fields[0].primary_key, f"{model.__name__}: the primary key comes first"
    return fields, [field.attname for field in fields], tuple(map(_converter, fields))


@functools.cache
def _columns(
    model: type[models.Model], prefix: str, vendor: str, only: tuple[str, ...] | None = None
) -> str:
    """The quoted column list of a model (``only`` some), each behind ``prefix`` (a table
    alias and a dot)."""
    quote = connection.ops.quote_name
    return ", ".join(prefix + quote(field.column) for field in _fields(model, only)[0])


def _converter(field: models.Field[Any, Any]) -> Callable[[Any], object] | None:
    """What SQLite's raw values need (PostgreSQL's come typed; these leave them alone)."""
    if isinstance(field, models.DateTimeField):
        return aware
    if isinstance(field, models.BooleanField):
        return bool
    if isinstance(field, models.JSONField | models.DecimalField | models.DateField):
        raise TypeError(f"keyfob.sql does not convert {field.__class__.__name__} values")
    return None
