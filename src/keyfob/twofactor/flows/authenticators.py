"""Renaming and removing one of an account's authenticators, an app or a key: one path for
both (one lock, one event, one notice), what differs looked up by :class:`Family`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from keyfob.accounts import proofs
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.otp import KeyfobError
from keyfob.twofactor.models import Authenticator, SecurityKey

Item = Authenticator | SecurityKey


class Family(StrEnum):
    """Which kind of authenticator: an authenticator app or a security key (passkey)."""

    APP = "app"
    KEY = "key"


class UnknownAuthenticator(KeyfobError):
    """No such app or key on this account: another account's, an unknown one, or one removed
    meanwhile (in another tab)."""

    code = "unknown_authenticator"


class LastAuthenticator(KeyfobError):
    """Removing the last authenticator is turning 2FA off, which has its own confirmation."""

    code = "last_authenticator"


@dataclass(frozen=True)
class _Rules:
    rows: Callable[[User], QuerySet[Authenticator] | QuerySet[SecurityKey]]
    renamed: tuple[EventKind, NoticeKind]
    removed: tuple[EventKind, NoticeKind]
    # What the removal's event records besides the name.
    removed_detail: Callable[[Item], dict[str, object]]


_RULES = {
    # A pending app (not confirmed yet) is no authenticator of the account yet.
    Family.APP: _Rules(
        rows=lambda user: Authenticator.objects.filter(user=user, confirmed_at__isnull=False),
        renamed=(EventKind.AUTHENTICATOR_RENAMED, NoticeKind.AUTHENTICATOR_RENAMED),
        removed=(EventKind.AUTHENTICATOR_REMOVED, NoticeKind.AUTHENTICATOR_REMOVED),
        removed_detail=lambda item: {"method": getattr(item, "kind", "")},
    ),
    Family.KEY: _Rules(
        rows=lambda user: SecurityKey.objects.filter(user=user),
        renamed=(EventKind.KEY_RENAMED, NoticeKind.KEY_RENAMED),
        removed=(EventKind.KEY_REMOVED, NoticeKind.KEY_REMOVED),
        removed_detail=lambda item: {},
    ),
}


def family_of(item: Item) -> Family:
    return Family.KEY if isinstance(item, SecurityKey) else Family.APP


def _locked(user: User) -> dict[Family, list[Item]]:
    """The account's confirmed apps and its keys, their rows locked (PostgreSQL; SQLite's
    IMMEDIATE transactions serialise writers anyway): two removals at once cannot each see
    the other's authenticator still there and leave none, and a rename waits for a removal
    and then finds nothing. Inside the caller's transaction."""
    return {
        family: list(rules.rows(user).select_for_update().order_by("pk"))
        for family, rules in _RULES.items()
    }


def _find(locked: dict[Family, list[Item]], family: Family, pk: int) -> Item:
    found = next((item for item in locked[family] if item.pk == pk), None)
    if found is None:
        raise UnknownAuthenticator(f"no {family} {pk} on this account")
    return found


def rename(user: User, family: Family, pk: int, name: str, context: Context) -> Item:
    """Give one of the account's apps or keys (``family``, numbered ``pk``) a new name,
    recorded and notified; return it. Raises :class:`UnknownAuthenticator` for another
    account's, an unknown one or one removed meanwhile."""
    rules = _RULES[Family(family)]
    with transaction.atomic():
        item = _find(_locked(user), family, pk)
        old = item.label
        item.name = name
        item.save(update_fields=["name"])
        event, notice = rules.renamed
        # label: a default name is recorded untranslated, and read in each reader's language.
        record(user, event, context, old=old, name=item.label)
        notices.queue(user, notice, context, old=old, name=item.label)
        return item


def remove(request: HttpRequest, user: User, family: Family, pk: int, context: Context) -> Item:
    """Remove one of the account's apps or keys; return it (no longer saved). The proofs it
    made stop counting, in every session.

    Raises :class:`LastAuthenticator` if it is the account's only authenticator, of any
    family (that is turning 2FA off, with its own confirmation: ``disable``),
    :class:`UnknownAuthenticator` for another account's, an unknown one or one removed
    meanwhile, and ``ReauthRequired`` without a recent confirmation.
    """
    rules = _RULES[Family(family)]
    proofs.require_recent_auth(request)
    with transaction.atomic():
        locked = _locked(user)
        item = _find(locked, family, pk)
        if sum(len(items) for items in locked.values()) == 1:
            raise LastAuthenticator("the last authenticator: turn two-factor authentication off")
        proofs.authenticator_gone(user, Family(family).value, item.pk)
        item.delete()
        event, notice = rules.removed
        record(user, event, context, name=item.label, **rules.removed_detail(item))
        notices.queue(user, notice, context, name=item.label)
        return item
