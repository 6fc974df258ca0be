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
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import connection, models
from django.utils.dateparse import parse_datetime

M = TypeVar("M", bound=models.Model)


def table(model: type[models.Model]) -> str:
    """The model's table name, quoted for the current backend."""
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
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    return None if found is None else tuple(found)


def count(sql: str, params: Sequence[Any]) -> int:
    """Run one statement that changes rows; return how many it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def load(model: type[M], where: str, params: Sequence[object]) -> M | None:
    """The one ``model`` row matching ``where`` (SQL with %s placeholders), or None.

    Reads every concrete column and converts what a raw cursor leaves unconverted (SQLite's
    datetimes and booleans); the model must have no other field needing a converter.
    """
    fields, select, names = _select(model, connection.vendor)
    found = row(f"{select} WHERE {where}", params)
    if found is None:
        return None
    values = [_python(field, value) for field, value in zip(fields, found, strict=True)]
    return model.from_db(connection.alias, names, values)


@functools.cache
def _select(
    model: type[models.Model], vendor: str
) -> tuple[tuple[models.Field[Any, Any], ...], str, list[str]]:
    """A model's concrete fields, the SELECT of their columns, and their attribute names."""
    fields = tuple(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    select = f"SELECT {columns} FROM {table(model)}"  # noqa: S608 - names from the model
    return fields, select, [field.attname for field in fields]


def _python(field: models.Field[Any, Any], value: object) -> object:
    if value is None:
        return None
    if isinstance(field, models.DateTimeField):
        return aware(value)
    if isinstance(field, models.BooleanField):
        return bool(value)
    if isinstance(field, models.JSONField | models.DecimalField | models.DateField):
        raise TypeError(f"sql.load does not convert {field.__class__.__name__} values")
    return value
