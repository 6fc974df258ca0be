"""keyfob rotate-keys [--check] [--batch-size N] [--limit N] [--signing-key]: re-encrypt under
the newest key; with --signing-key, also replace the key that signs ID tokens.

Put the new key first in KEYFOB_SECRET_KEYS (keeping the old ones after it), restart the
processes, then run this. It re-encrypts every stored secret still under an older key,
in batches, while the portal keeps running: each row is written by a compare-and-set on
the ciphertext it read, so a change made meanwhile (which is already under the new key)
wins and the row is left alone. Stopping it half-way is safe; running it again finishes
the work. ``--signing-key`` first makes a new ID-token signing key; the old one's public
half stays published (JWKS) until the tokens it signed have expired. ``--check`` counts
the rows still under an old key and exits 1 if there are any;
once it says 0 everywhere, the old keys can leave the ring.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction

from keyfob.core import keyring
from keyfob.oidc import keys as signing_keys


@dataclass(frozen=True)
class EncryptedField:
    """A column holding ``keyring.encrypt`` output, and how its context is rebuilt."""

    model: str  # "app_label.Model"
    field: str
    context: Callable[[dict[str, Any]], str]  # from the row's values
    context_fields: tuple[str, ...]

    def rows(self) -> models.QuerySet[Any]:
        rows: models.QuerySet[Any] = apps.get_model(self.model)._default_manager.all()
        return rows


# Every encrypted column. A new one must be added here, or rotation would miss it (the
# --check count would then still show 0 for it: keep this list next to the models' own).
ENCRYPTED_FIELDS = [
    EncryptedField(
        "twofactor.Authenticator",
        "secret_encrypted",
        # The model's own context function, so the two never disagree.
        lambda row: apps.get_model("twofactor.Authenticator")._context(row["user_id"]),
        ("user_id",),
    ),
    EncryptedField(
        "oidc.SigningKey",
        "private_key",
        lambda row: f"oidc-signing-key:{row['kid']}",
        ("kid",),
    ),
    EncryptedField(
        "api.CaKey",
        "private_encrypted",
        lambda row: apps.get_model("api.CaKey").context(row["fingerprint"]),
        ("fingerprint",),
    ),
]


def _current_prefix() -> str:
    return f"v1.{keyring.key_id(keyring.ring()[0])}."


def stale(spec: EncryptedField) -> models.QuerySet[Any]:
    """The rows of ``spec`` whose ciphertext is not under the newest key (empty ones aside)."""
    return (
        spec.rows()
        .exclude(**{f"{spec.field}__startswith": _current_prefix()})
        .exclude(**{spec.field: ""})
        .exclude(**{f"{spec.field}__isnull": True})
    )


def reencrypt(spec: EncryptedField, pk: Any, old: str, context: str) -> bool:
    """Write ``old`` re-encrypted under the newest key unless the row changed meanwhile.

    Returns True if the row was written. Raises :class:`keyring.KeyRingError` if ``old``
    cannot be decrypted (its key left the ring, or the data was altered).
    """
    new = keyring.encrypt(keyring.decrypt(old, context=context), context=context)
    return spec.rows().filter(pk=pk, **{spec.field: old}).update(**{spec.field: new}) == 1


class Command(BaseCommand):
    help = "Re-encrypt stored secrets under the newest key of KEYFOB_SECRET_KEYS."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="count rows under an old key; exit 1 if any"
        )
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--limit", type=int, default=0, help="stop after N rows (0: all)")
        parser.add_argument(
            "--signing-key",
            action="store_true",
            help="also replace the ID-token signing key (the old one stays published a while)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["check"]:
            total = 0
            for spec in ENCRYPTED_FIELDS:
                count = stale(spec).count()
                total += count
                self.stdout.write(f"{spec.model}.{spec.field}: {count} under an old key")
            self.stdout.write(f"{total} rows still use an old key")
            if total:
                sys.exit(1)
            return
        if opts["signing_key"]:
            new, old = signing_keys.rotate()
            self.stdout.write(
                f"ID tokens are now signed with key {new}" + (f" (was {old})" if old else "")
            )
        batch_size = max(1, opts["batch_size"])
        limit = max(0, opts["limit"])
        done = skipped = failed = 0
        for spec in ENCRYPTED_FIELDS:
            last_pk: Any = None
            while not limit or done + skipped + failed < limit:
                rows = stale(spec).order_by("pk")
                if last_pk is not None:
                    rows = rows.filter(pk__gt=last_pk)
                take = batch_size if not limit else min(batch_size, limit - done - skipped - failed)
                batch = list(rows.values("pk", spec.field, *spec.context_fields)[:take])
                if not batch:
                    break
                # One short transaction per batch: no lock is held between batches.
                with transaction.atomic():
                    for row in batch:
                        try:
                            wrote = reencrypt(spec, row["pk"], row[spec.field], spec.context(row))
                        except keyring.KeyRingError as exc:
                            failed += 1
                            self.stderr.write(f"{spec.model} {row['pk']}: {exc}")
                            continue
                        done += wrote
                        skipped += not wrote
                last_pk = batch[-1]["pk"]
        self.stdout.write(
            f"re-encrypted {done} rows; {skipped} changed meanwhile (already current); "
            f"{failed} failed"
        )
        if failed:
            sys.exit(1)
