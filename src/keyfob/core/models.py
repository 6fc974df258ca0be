"""The throttle counters every channel shares (see :mod:`keyfob.core.throttle`)."""

from __future__ import annotations

from django.db import models

from keyfob.core import clock


class Throttle(models.Model):
    """Failure counters for one (scope, key): an account's codes, a password, an address.

    Every channel (web, SSH, API) updates the same row, and only through single SQL
    statements or under the row's lock, so concurrent failures all count.
    """

    scope = models.CharField(max_length=32)
    key = models.CharField(max_length=128)
    consecutive = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    # Lets a check skip counting the daily failures when there was none for a day.
    last_failure_at = models.DateTimeField(null=True, blank=True)
    updated = models.DateTimeField(default=clock.now)

    class Meta:
        # Made by the accounts app, before core existed; the table keeps its name.
        db_table = "accounts_throttle"
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="throttle_scope_key")]


class ThrottleFailure(models.Model):
    """One failure, kept 24 hours, so the daily cap holds over any 24-hour span."""

    throttle = models.ForeignKey(Throttle, on_delete=models.CASCADE, related_name="failures")
    at = models.DateTimeField(default=clock.now, db_index=True)

    class Meta:
        db_table = "accounts_throttlefailure"
