# ruff: noqa: RUF002 (the look-alike characters below are the point, spelt as they are)
"""The one form in which Keyfob stores and compares e-mail addresses (DESIGN.md invariant 9).

:func:`normal_email` is the only place that decides when two typed addresses are the same
address: every lookup by address (sign-in, password reset, e-mail change, support desk,
``createuser``, the SSH API's links) compares the stored address with the normal form of
what was typed, by plain equality, and every address is stored in that form (unique).
No comparison relies on the database's collation (``iexact``, ``UPPER()``): PostgreSQL in
a UTF-8 locale upper-cases ``ı`` to ``I`` and an ICU database ``ß`` to ``SS``, SQLite folds
ASCII only, so the same query matched different accounts on different databases.

The rule: two addresses match only if a mail server would deliver them to one mailbox.

- Surrounding white space goes, and the ASCII letters ``A``–``Z`` become ``a``–``z``, in
  the local part and in the domain. Domains are case-insensitive (DNS); local parts are
  case-sensitive in RFC 5321 but every mail service people use folds ASCII case, and Keyfob
  has always stored them lower-cased, so ``Alice@Example.COM`` is ``alice@example.com``.
- Every other character is kept as it is: no Unicode case folding, no NFKC, no NFC, no
  IDNA mapping. Each of those maps distinct characters together: ``ı`` (dotless i) upper-cases
  to ``I``; case folding turns ``ß`` into ``ss`` and ``ſ`` into ``s``; NFKC turns full-width
  ``ｅ`` into ``e``; even NFC turns the Kelvin sign ``K`` into ``K``. ``gmaıl.com``,
  ``straße.de`` and ``strasse.de`` are different domains under IDNA 2008 (one can register
  each), so folding them would send one person's mail, or match one person's account, for
  another's address. The cost is on the safe side: an address typed in another Unicode
  spelling of the same characters matches nothing, and nothing is sent to its account.
"""

from __future__ import annotations

import string
from typing import Any

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def normal_email(address: str) -> str:
    """``address`` in Keyfob's one normal form (see the module's docstring): stripped, with
    ASCII letters lower-cased and every other character unchanged. Validates nothing."""
    return address.strip().translate(_ASCII_LOWER)


class AddressClash(Exception):
    """Accounts stored with addresses that are one address in the normal form."""

    def __init__(self, clashes: dict[str, list[int]]) -> None:
        self.clashes = clashes
        listed = "; ".join(
            f"{address}: accounts {', '.join(str(pk) for pk in pks)}"
            for address, pks in sorted(clashes.items())
        )
        super().__init__(
            "Some accounts have addresses that are one address once stored in Keyfob's "
            f"normal form (README, issue 22): {listed}. Give every one but one of each "
            "group another address, or delete it (keyfob shell), then run keyfob migrate "
            "again. Nothing was changed."
        )


def normalise_stored(users: Any, changes: Any) -> int:
    """Store every account's address (``users``, the account model) and every address
    waiting for its confirmation code (``changes``) in the normal form; return how many
    accounts changed.

    Raises :class:`AddressClash`, having changed nothing, when two accounts' addresses are
    one address in the normal form (``Bob@example.com`` and ``bob@example.com``, stored by
    something other than Keyfob's own paths, which always lower-cased): which of them owns
    the mailbox is for a person to decide, not for a migration.
    """
    groups: dict[str, list[tuple[int, str]]] = {}
    for pk, email in users.objects.order_by("pk").values_list("pk", "email"):
        groups.setdefault(normal_email(email), []).append((pk, email))
    clashes = {n: [pk for pk, _ in rows] for n, rows in groups.items() if len(rows) > 1}
    if clashes:
        raise AddressClash(clashes)
    changed = 0
    for normal, [(pk, email)] in groups.items():
        if email != normal:
            changed += users.objects.filter(pk=pk).update(email=normal)
    for pk, email in changes.objects.values_list("pk", "email"):
        if email != normal_email(email):
            changes.objects.filter(pk=pk).update(email=normal_email(email))
    return changed
