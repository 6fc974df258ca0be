"""keyfob rotate-keys: every secret moves to the newest key, resumably, and --check counts."""

from __future__ import annotations

import base64
import importlib
import io
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.api import sshca
from keyfob.core import keyring
from keyfob.oidc import keys as signing_keys
from keyfob.twofactor.models import Authenticator

pytestmark = pytest.mark.django_db

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()
rotate = importlib.import_module("keyfob.site.management.commands.rotate-keys")


@pytest.fixture
def ring(settings) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Set KEYFOB_SECRET_KEYS with ``ring.use("new,old")``; the cached ring follows."""

    class Ring:
        def use(self, keys: str) -> None:
            settings.KEYFOB_SECRET_KEYS = keys
            keyring.ring.cache_clear()

    keyring.ring.cache_clear()
    yield Ring()
    keyring.ring.cache_clear()


def make_accounts(n: int) -> dict[int, bytes]:
    secrets = {}
    for i in range(n):
        user = User.objects.create_user(f"user{i}@example.com", "a long enough password")
        auth = Authenticator(user=user)
        secrets[user.pk] = otp.random_secret()
        auth.set_secret(secrets[user.pk])
        auth.save()
    return secrets


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("rotate-keys", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_rotation_in_batches_resumes_and_old_keys_can_go(ring) -> None:  # type: ignore[no-untyped-def]
    ring.use(OLD)
    secrets = make_accounts(5)
    ca = sshca.current_key()  # the SSH certificate authority's key (issue 26)
    signing = signing_keys.current().kid  # the ID-token signing key (issue 25)
    ring.use(f"{NEW},{OLD}")
    assert run("--check") == (1, "twofactor.Authenticator.secret_encrypted: 5 under an old key\n"
                                 "oidc.SigningKey.private_key: 1 under an old key\n"
                                 "api.CaKey.private_encrypted: 1 under an old key\n"
                                 "7 rows still use an old key\n")  # fmt: skip
    # Interrupted after two rows (as a stopped run would be): the rest is still to do.
    code, out = run("--batch-size", "1", "--limit", "2")
    assert code == 0 and "re-encrypted 2 rows" in out
    assert run("--check")[0] == 1 and "5 rows still use an old key" in run("--check")[1]
    code, out = run("--batch-size", "2")
    assert code == 0 and "re-encrypted 5 rows" in out
    assert run("--check") == (0, "twofactor.Authenticator.secret_encrypted: 0 under an old key\n"
                                 "oidc.SigningKey.private_key: 0 under an old key\n"
                                 "api.CaKey.private_encrypted: 0 under an old key\n"
                                 "0 rows still use an old key\n")  # fmt: skip
    assert run()[1].startswith("re-encrypted 0 rows")

    ring.use(NEW)  # the old key leaves the ring: every secret still reads back
    for auth in Authenticator.objects.all():
        assert auth.secret() == secrets[auth.user_id]
        assert not keyring.uses_old_key(auth.secret_encrypted)
    ca.refresh_from_db()
    assert sshca._private(ca)  # the CA key still decrypts, and signs
    signing_keys._load.cache_clear()
    assert signing_keys.by_kid(signing) is not None  # the signing key still decrypts


def test_a_change_made_meanwhile_wins(ring) -> None:  # type: ignore[no-untyped-def]
    ring.use(OLD)
    make_accounts(1)
    auth = Authenticator.objects.get()
    stale = auth.secret_encrypted
    ring.use(f"{NEW},{OLD}")
    # The account re-enrols while rotation works from the row it read before.
    fresh = otp.random_secret()
    auth.set_secret(fresh)
    auth.save()
    spec = rotate.ENCRYPTED_FIELDS[0]
    assert rotate.reencrypt(spec, auth.pk, stale, f"authenticator:{auth.user_id}") is False
    auth.refresh_from_db()
    assert auth.secret() == fresh


def test_a_secret_whose_key_is_gone_is_reported(ring) -> None:  # type: ignore[no-untyped-def]
    ring.use(OLD)
    make_accounts(2)
    ring.use(NEW)
    code, out = run()
    assert code == 1 and "2 failed" in out
    Authenticator.objects.update(secret_encrypted="")  # nothing to rotate in empty rows
    assert run("--check")[0] == 0
