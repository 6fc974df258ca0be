"""Consume once (DESIGN.md invariant 1): every one-time thing is used by one conditional
UPDATE whose row count says who won."""

from __future__ import annotations

from typing import Any

from django.db import models


def consume(rows: models.QuerySet[Any], **changes: Any) -> bool:
    """Apply ``changes`` to ``rows`` (a queryset filtered down to one row *and* the condition
    that it is still unused) in one statement; return whether exactly that one row changed.

    Two concurrent callers both reading "unused" cannot both win: the database evaluates the
    condition again under the row's write lock, and the loser's UPDATE changes nothing.
    """
    return rows.update(**changes) == 1
