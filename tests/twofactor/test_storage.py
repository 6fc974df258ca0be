"""Invariants 1 and 3: single use under concurrency; no secret readable in the database."""

from __future__ import annotations

import base64
import binascii
import io
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections

from keyfob import otp
from keyfob.audit.events import Context
from keyfob.otp import KeyfobError
from keyfob.twofactor import flows
from tests.conftest import Enrolled


@pytest.mark.postgres  # the throttle row lock: proven on PostgreSQL (issue 21)
@pytest.mark.django_db(transaction=True)
def test_ten_threads_one_code_one_success(user_with_totp: Enrolled, frozen_time: float) -> None:
    code = user_with_totp.code()
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            barrier.wait(timeout=10)
            flows.verify_code(user_with_totp.user, code, Context())
            outcomes.append("ok")
        except KeyfobError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()  # each thread had its own connection

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == 10
    assert outcomes.count("ok") == 1, outcomes
    # The nine losers count as failures: five reuses, then the account is throttled.
    assert sorted(outcomes) == ["CodeReused"] * 5 + ["Throttled"] * 4 + ["ok"]


def _database_bytes() -> bytes:
    """Everything the database holds: a full dumpdata, plus the raw file on SQLite."""
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    data = out.getvalue().encode()
    if connection.vendor == "sqlite":
        connection.close()
        name = Path(settings.DATABASES["default"]["TEST"]["NAME"])
        data += b"".join(p.read_bytes() for p in name.parent.glob(name.name + "*"))
    return data


@pytest.mark.django_db(transaction=True)
def test_the_database_holds_no_secret_in_any_encoding(user_with_totp: Enrolled) -> None:
    secret = user_with_totp.secret
    data = _database_bytes()
    assert b"alice@example.com" in data  # the dump did read the rows
    b32 = otp.b32encode_secret(secret)
    for needle in [
        secret,
        b32.encode(),
        b32.lower().encode(),
        binascii.hexlify(secret),
        binascii.hexlify(secret).upper(),
        binascii.b2a_base64(secret, newline=False),
        base64.urlsafe_b64encode(secret),
    ]:
        assert needle not in data
    assert flows.confirmed_authenticator(user_with_totp.user) is not None


@pytest.mark.django_db
def test_a_ciphertext_moved_to_another_account_does_not_decrypt(
    user_with_totp: Enrolled, django_user_model
) -> None:  # type: ignore[no-untyped-def]
    from keyfob.core.keyring import KeyRingError
    from keyfob.twofactor.models import Authenticator

    other = django_user_model.objects.create_user("bob@example.com", "another password 1")
    stolen = Authenticator(
        user=other,
        secret_encrypted=Authenticator.objects.get(user=user_with_totp.user).secret_encrypted,
    )
    with pytest.raises(KeyRingError):
        stolen.secret()
