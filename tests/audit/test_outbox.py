"""queue(): one outbox row in the change's transaction, no network, hourly WRONG_CODES."""

from __future__ import annotations

import smtplib
import socket
from typing import Any

import pytest
from django.db import transaction

from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.models import Outbox, OutboxState
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock
from tests.audit.conftest import CONTEXT, make_user
from tests.conftest import free_port


class Boom(Exception):
    pass


def test_a_rolled_back_change_leaves_no_notice(alice: User) -> None:
    with pytest.raises(Boom), transaction.atomic():
        notices.queue(alice, NoticeKind.PASSWORD_CHANGED, CONTEXT)
        raise Boom
    assert not Outbox.objects.exists()


def test_a_committed_change_leaves_one_queued_notice(alice: User, frozen: float) -> None:
    with transaction.atomic():
        row = notices.queue(alice, NoticeKind.RECOVERY_USED, CONTEXT, remaining=3)
    assert row is not None
    stored = Outbox.objects.get()
    assert stored.pk == row.pk
    assert stored.user == alice and stored.to == "alice@example.com"
    assert stored.kind == NoticeKind.RECOVERY_USED and stored.params == {"remaining": 3}
    assert stored.state == OutboxState.QUEUED and stored.attempts == 0
    assert stored.created_at == clock.now() == stored.next_attempt_at
    assert stored.address == CONTEXT.address and stored.user_agent == CONTEXT.user_agent
    assert stored.language == "en" and stored.time_zone == "UTC"


def test_to_overrides_the_address_for_the_old_one(alice: User) -> None:
    with transaction.atomic():
        notices.queue(
            alice, NoticeKind.EMAIL_CHANGED, CONTEXT, to="old@example.com", old="old@example.com"
        )
    assert Outbox.objects.get().to == "old@example.com"


@pytest.mark.parametrize("name", ["code", "secret", "password", "token", "Codes"])
def test_a_parameter_that_could_carry_a_secret_is_refused(alice: User, name: str) -> None:
    with pytest.raises(ValueError, match="never carries"), transaction.atomic():
        notices.queue(alice, NoticeKind.RECOVERY_USED, CONTEXT, **{name: "123456"})
    assert not Outbox.objects.exists()


def test_parameters_must_be_plain_json(alice: User) -> None:
    with pytest.raises(TypeError), transaction.atomic():
        notices.queue(alice, NoticeKind.TRUSTED_BROWSER, CONTEXT, browser=object())
    with pytest.raises(ValueError), transaction.atomic():
        notices.queue(alice, "not_a_kind", CONTEXT)  # type: ignore[arg-type]
    assert not Outbox.objects.exists()


def test_wrong_codes_warns_at_most_once_an_hour_per_account(alice: User) -> None:
    bob = make_user("bob@example.com")

    def wrong_codes(user: User, at: float) -> Outbox | None:
        with clock.frozen(at), transaction.atomic():
            return notices.queue(user, NoticeKind.WRONG_CODES, CONTEXT)

    t = 1_800_000_000.0
    assert wrong_codes(alice, t) is not None
    assert wrong_codes(alice, t + 1) is None
    assert wrong_codes(alice, t + 3599) is None
    assert wrong_codes(bob, t + 10) is not None  # another account is not held back
    assert wrong_codes(alice, t + 3601) is not None
    assert wrong_codes(alice, t + 3700) is None
    assert Outbox.objects.filter(user=alice).count() == 2
    assert Outbox.objects.filter(user=bob).count() == 1


def test_other_kinds_are_never_held_back(alice: User) -> None:
    with transaction.atomic():
        for _ in range(3):
            assert notices.queue(alice, NoticeKind.RECOVERY_USED, CONTEXT, remaining=1)
    assert Outbox.objects.count() == 3


def test_queueing_never_touches_the_network(
    alice: User, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.KEYFOB_SMTP_URL = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there

    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("queue() opened a connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(smtplib.SMTP, "connect", no_network)
    with transaction.atomic():
        for i in range(100):
            notices.queue(alice, NoticeKind.RECOVERY_USED, CONTEXT, remaining=i)
    assert Outbox.objects.filter(state=OutboxState.QUEUED).count() == 100


def test_the_account_language_and_time_zone_are_kept_with_the_notice(db: None) -> None:
    french = make_user("claire@example.com", language="fr", time_zone="Europe/Paris")
    unknown = make_user("dan@example.com", language="de")
    with transaction.atomic():
        a = notices.queue(french, NoticeKind.TWOFACTOR_ON, CONTEXT)
        b = notices.queue(unknown, NoticeKind.TWOFACTOR_ON, CONTEXT)
    assert a is not None and b is not None
    assert (a.language, a.time_zone) == ("fr", "Europe/Paris")
    assert b.language == "en"  # not a language Keyfob speaks: English
