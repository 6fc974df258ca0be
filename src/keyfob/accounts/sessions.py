"""An account's signed-in sessions: the list the Security page shows, signing one or all
others out, and ending every session of an account (a password reset, support turning 2FA
off).

Ending a session ends it for real: its Django session row is deleted, so the other
browser's next request is signed out, and its sign-in record is marked ended (``keyfob
prune-activity`` deletes ended records).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY, user_logged_out
from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest

from keyfob.accounts.models import SignIn, User
from keyfob.accounts.proofs import current, digest, require_recent_auth
from keyfob.accounts.signals import signins_ended
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.audit.signals import pruning
from keyfob.audit.useragent import describe
from keyfob.core import clock

PENDING_KEY = "keyfob.pending"

# "Last seen" is written at most this often (by SessionLifetimeMiddleware, with the
# session's own clock): a write per request would be wasted work.
SEEN_RESOLUTION = 60.0


def session_accounts(data: dict[str, Any]) -> set[int]:
    """The ids of the accounts a decoded session holds: signed in, or half-way through the
    sign-in (a pending marker)."""
    found: set[int] = set()
    signed_in = str(data.get(SESSION_KEY, ""))
    if signed_in.isdecimal():
        found.add(int(signed_in))
    marker = data.get(PENDING_KEY)
    uid = marker.get("uid") if isinstance(marker, dict) else None
    if isinstance(uid, int):
        found.add(uid)
    return found


def _store() -> tuple[type[SessionBase], Any]:
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    get_model = getattr(store_class, "get_model_class", None)
    if get_model is None:
        raise ImproperlyConfigured("Keyfob needs a database-backed session engine")
    return store_class, get_model()


def _delete_sessions(user: User, *, keep: str | None = None, only: set[str] | None = None) -> int:
    """Delete the Django sessions of ``user`` (signed in or half-way), but the one whose
    key is ``keep``; with ``only``, just those whose key's digest is in it. Returns how many.

    Sessions are not indexed by account, so this reads them all: fine for what happens a
    few times a day, and it stores nothing new (the sign-in records keep only digests).
    """
    store_class, model = _store()
    ended = 0
    for row in model.objects.iterator():
        if row.session_key == keep:
            continue
        if only is not None and digest(row.session_key) not in only:
            continue
        if user.pk in session_accounts(store_class().decode(row.session_data)):
            store_class(session_key=row.session_key).delete()
            ended += 1
    return ended


def _live(user: User) -> Any:
    return SignIn.objects.filter(user=user, ended_at__isnull=True)


def _ended(user_id: int, rows: Any) -> None:
    """Mark the sign-ins ``rows`` ended, and say so to the apps above (signins_ended)."""
    ids = list(rows.values_list("pk", flat=True))
    if ids:
        SignIn.objects.filter(pk__in=ids).update(ended_at=clock.now())
        signins_ended.send(sender=SignIn, user_id=user_id, signin_ids=ids)


def end_sessions(user: User) -> int:
    """Sign every session of ``user`` out, signed in or half-way; return how many sessions
    ended. Inside the caller's transaction, if any."""
    with transaction.atomic():
        _ended(user.pk, _live(user))
        return _delete_sessions(user)


def signed_in_sessions(request: HttpRequest, user: User) -> list[dict[str, object]]:
    """The account's live sessions, the most recently active first, each with its browser,
    address, when it started and was last active, how it signed in (the factors it proved
    first) and whether it is this one."""
    here = current(request)
    rows = _live(user).filter(_alive()).prefetch_related("proofs")
    listed: list[dict[str, object]] = []
    for row in rows:
        proofs = list(row.proofs.all())
        first = [p for p in proofs if p.at == row.started_at] or proofs[:2]
        listed.append(
            {
                "signin": row,
                "browser": describe(row.user_agent),
                "how": first,
                "this": here is not None and here.pk == row.pk,
            }
        )
    return listed


def _alive() -> Q:
    """Sessions that may still be signed in (not past their lifetime or idle time)."""
    now = clock.now()
    return Q(started_at__gt=now - timedelta(seconds=settings.KEYFOB_SESSION_MAX_AGE)) & Q(
        last_seen_at__gt=now - timedelta(seconds=settings.KEYFOB_SESSION_IDLE)
    )


class NoSuchSession(Exception):
    """Not a live session of this account (or it is this one)."""


def sign_out_session(request: HttpRequest, user: User, pk: int) -> str:
    """Sign out one other session of ``user`` (the Security page's "Sign out"); return its
    browser's name. Needs a recent confirmation (raises ``ReauthRequired``); raises
    :class:`NoSuchSession` for this session, an ended one, or another account's."""
    require_recent_auth(request)
    here = current(request)
    with transaction.atomic():
        row = _live(user).select_for_update().filter(pk=pk).first()
        if row is None or (here is not None and here.pk == row.pk):
            raise NoSuchSession()
        _ended(user.pk, SignIn.objects.filter(pk=row.pk))
        _delete_sessions(user, only={row.session_digest})
        browser = describe(row.user_agent)
        _recorded(request, user, [browser])
    return browser


def sign_out_other_sessions(request: HttpRequest, user: User) -> int:
    """Sign out every session of ``user`` but this one ("Sign out everywhere else"); return
    how many ended. Needs a recent confirmation (raises ``ReauthRequired``)."""
    require_recent_auth(request)
    here = request.session.session_key
    with transaction.atomic():
        others = _live(user)
        if here:
            others = others.exclude(session_digest=digest(here))
        browsers = [describe(r.user_agent) for r in others.filter(_alive())]
        _ended(user.pk, others)
        ended = _delete_sessions(user, keep=here)
        if ended or browsers:
            _recorded(request, user, browsers)
    return ended


def _recorded(request: HttpRequest, user: User, browsers: Iterable[str]) -> None:
    context = Context.from_request(request)
    ended = sorted(set(browsers))
    record(user, EventKind.SESSIONS_ENDED, context, sessions=ended)
    notices.queue(user, NoticeKind.SESSIONS_ENDED, context, sessions=ended)


def seen(request: HttpRequest) -> None:
    """This session was active just now (called at most once a minute per session)."""
    key = request.session.session_key
    if key:
        SignIn.objects.filter(session_digest=digest(key), ended_at__isnull=True).update(
            last_seen_at=clock.now()
        )


def prune() -> int:
    """Delete the sign-in records of sessions that ended, or that cannot be signed in any
    more (past their lifetime or idle time), with their proofs; return how many records."""
    _, per_model = SignIn.objects.filter(Q(ended_at__isnull=False) | ~_alive()).delete()
    return per_model.get(SignIn._meta.label, 0)


@receiver(pruning, dispatch_uid="keyfob.accounts.prune-signins")
def _prune(sender: object, **kwargs: object) -> tuple[str, int]:
    return "records of ended sessions", prune()


@receiver(user_logged_out, dispatch_uid="keyfob.accounts.signin-ended")
def _signed_out(sender: object, request: HttpRequest | None, **kwargs: object) -> None:
    """A session signed out (its holder, or its lifetime ran out): its record ends."""
    if request is not None and hasattr(request, "session") and request.session.session_key:
        rows = SignIn.objects.filter(
            session_digest=digest(request.session.session_key), ended_at__isnull=True
        )
        with transaction.atomic():
            for user_id in set(rows.values_list("user_id", flat=True)):
                _ended(user_id, rows.filter(user_id=user_id))
