"""One-time codes e-mailed to a person and typed or read back: a new sign-in address's
confirmation, a password reset, support's identity check. One life cycle serves the three
(DESIGN.md invariant 1):

- :func:`start`: make a code; seal it (key ring) for the notice that carries it; queue that
  notice; write the row that waits for the code (only its keyed digest), replacing an
  earlier one (whose sealed copy is dropped).
- :func:`check`: compare the typed code with the digest; a right one is used once (one
  conditional UPDATE on the still-live row) and its sealed copy dropped; a wrong one counts
  a try (one conditional UPDATE), and the last try drops the sealed copy too.

Rows are models with the fields of ``accounts.models.MailedCode`` (salt, digest, expires_at,
tries, used_at, outbox). The notice and its seal live in ``audit``, a layer above this one:
a :class:`CodeKind` carries ``audit.notices.drop_seal`` in, and :func:`start` is given the
function that queues the notice.
"""

from __future__ import annotations

import hmac
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import F
from django.utils.crypto import salted_hmac

from keyfob.core import clock, keyring
from keyfob.core.consume import consume


def new_code(digits: int) -> tuple[str, str]:
    """A random code of ``digits`` decimal digits to e-mail, and a new salt for its digest."""
    return "".join(secrets.choice(string.digits) for _ in range(digits)), secrets.token_hex(16)


def digest(purpose: str, salt: str, code: str) -> str:
    """What is kept to check a mailed code. Keyed by SECRET_KEY: 8 digits are few enough
    that an unkeyed hash would be reversed. ``purpose`` keeps two uses' digests apart."""
    return salted_hmac(f"{purpose}:{salt}", code, algorithm="sha256").hexdigest()


def spaced(code: str) -> str:
    """A mailed code in groups of four, for reading (aloud); '' stays ''."""
    return f"{code[:4]} {code[4:]}" if code else ""


@dataclass(frozen=True)
class CodeKind:
    """One use of e-mailed codes, declared once by the app that owns it.

    ``purpose`` keys the digests; ``seal`` names the sealed copy's context
    (``"<seal>:<nonce>"``, the nonce being the row's salt, sent in the notice's parameters);
    ``drop_seal(outbox_id)`` removes the sealed copy from the notice once the code is spent.
    """

    purpose: str
    seal: str
    digits: int
    drop_seal: Callable[[int | None], None]

    def seal_context(self, nonce: str) -> str:
        return f"{self.seal}:{nonce}"

    def digest(self, salt: str, code: str) -> str:
        return digest(self.purpose, salt, code)

    def live(self, rows: models.QuerySet[Any], tries: int) -> models.QuerySet[Any]:
        """``rows`` still usable: not used, not expired, fewer than ``tries`` wrong tries."""
        return rows.filter(used_at__isnull=True, expires_at__gt=clock.now(), tries__lt=tries)


def start(
    kind: CodeKind,
    rows: models.QuerySet[Any],
    *,
    lifetime: timedelta,
    queue: Callable[[str, str], Any],
    key: dict[str, Any] | None = None,
    retire: dict[str, Any] | None = None,
    **fields: Any,
) -> Any:
    """Make a code, seal it, queue its notice, and write the row that waits for it; return
    the row. Call inside the caller's transaction.

    ``queue(sealed, nonce)`` queues the notice (``sealed`` and ``nonce`` among its
    parameters) and returns its outbox row. With ``key``, the row is the one of ``rows``
    with those fields, written over (an upsert: one code per key); without, a new row is
    added and the rows of ``rows`` still unused are retired (``retire``: the changes that
    say so). Either way the code they waited for stops working and its sealed copy goes.
    """
    code, salt = new_code(kind.digits)
    earlier = rows.select_for_update().filter(**(key or {"used_at__isnull": True}))
    for row in earlier:
        kind.drop_seal(row.outbox_id)
    if key is None and retire:
        earlier.update(**retire)
    outbox = queue(keyring.encrypt(code.encode(), context=kind.seal_context(salt)), salt)
    values = {
        **fields,
        "salt": salt,
        "digest": kind.digest(salt, code),
        "expires_at": clock.now() + lifetime,
        "tries": 0,
        "used_at": None,
        "outbox": outbox,
    }
    if key is None:
        return rows.model.objects.create(**values)
    row, _created = rows.model.objects.update_or_create(**key, defaults=values)
    return row


@dataclass(frozen=True)
class Checked:
    """What :func:`check` found. ``used``: the right code, used now by this call. Otherwise
    ``right`` says whether the code typed was the right one (spent meanwhile, then), and
    ``left`` how many tries remain (0: the code no longer works)."""

    used: bool
    right: bool
    left: int


def check(
    kind: CodeKind,
    live: models.QuerySet[Any],
    row: Any,
    code: str,
    *,
    tries: int,
    usable: bool = True,
    before_use: Callable[[], None] | None = None,
) -> Checked:
    """Check ``code`` against ``row``; ``live`` is that row while still usable (one row,
    filtered on the conditions that keep it usable). Call inside the caller's transaction.

    A right code is used once (two right codes at once: one wins) and its sealed copy is
    dropped; ``before_use`` runs first, and what it raises spends neither the code nor a
    try. A wrong code counts a try; the last one drops the sealed copy. ``usable`` False:
    the code opens nothing (a reset for an address no account uses), so even the right one
    only counts a try, after the same comparison.
    """
    right = hmac.compare_digest(kind.digest(row.salt, code), row.digest)
    if right and usable:
        if before_use is not None:
            before_use()
        if not consume(live, used_at=clock.now()):
            return Checked(used=False, right=True, left=0)  # used, or spent, meanwhile
        kind.drop_seal(row.outbox_id)
        return Checked(used=True, right=True, left=0)
    return Checked(used=False, right=False, left=count_try(kind, live, row, tries=tries))


def count_try(kind: CodeKind, live: models.QuerySet[Any], row: Any, *, tries: int) -> int:
    """Count one wrong code against ``row`` (one conditional UPDATE on ``live``); return
    the tries left: 0 when none is (it was used or spent meanwhile, or this was its last
    try, whose sealed copy is then dropped)."""
    if not consume(live, tries=F("tries") + 1):
        return 0
    row.refresh_from_db(fields=["tries"])
    left: int = max(0, tries - row.tries)
    if left == 0:
        kind.drop_seal(row.outbox_id)
    return left
