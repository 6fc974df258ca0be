"""Issue 21: a new event or notice kind needs no migration of its own, and an unknown kind
is still refused (in code, since the column no longer lists the kinds).

(Each refusal runs in its own savepoint: a save that raises marks its transaction for
rollback, as any failed write does.)"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction

from keyfob.accounts.models import User
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind, KindField, NoticeKind, Outbox, SecurityEvent
from keyfob.audit.notices import queue


@pytest.mark.parametrize("model", [SecurityEvent, Outbox])
def test_a_new_kind_changes_nothing_a_migration_sees(model: type) -> None:
    field = model._meta.get_field("kind")
    widened = KindField(choices=[*field.choices, ("brand_new", "Brand new")])
    widened.set_attributes_from_name("kind")
    # The autodetector compares deconstructed fields: equal, so no AlterField.
    assert widened.deconstruct()[1:] == field.deconstruct()[1:]
    assert "choices" not in field.deconstruct()[3]


@pytest.mark.django_db
def test_the_models_and_migrations_agree() -> None:
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_an_unknown_event_kind_is_refused(user: User) -> None:
    with pytest.raises(ValueError, match="unknown kind"), transaction.atomic():
        SecurityEvent.objects.create(user=user, kind="made_up")
    with pytest.raises(ValueError, match="unknown kind"), transaction.atomic():
        SecurityEvent.objects.bulk_create([SecurityEvent(user=user, kind="made_up")])
    # record() builds its row with event_row, which refuses it before the field does.
    with (
        pytest.raises(ValueError, match="'made_up' is not a valid EventKind"),
        transaction.atomic(),
    ):
        record(user, "made_up", Context())  # type: ignore[arg-type]
    assert not SecurityEvent.objects.exists()
    record(user, EventKind.SIGNOUT, Context())
    assert SecurityEvent.objects.get().get_kind_display() == "Signed out"


def test_an_unknown_notice_kind_is_refused(user: User) -> None:
    with pytest.raises(ValueError, match="unknown kind"), transaction.atomic():
        Outbox.objects.create(user=user, to=user.email, kind="made_up")
    with pytest.raises(ValueError), transaction.atomic():
        queue(user, "made_up", Context())  # type: ignore[arg-type]
    assert not Outbox.objects.exists()
    queue(user, NoticeKind.PASSWORD_CHANGED, Context())
    assert Outbox.objects.get().get_kind_display() == "Password changed"
