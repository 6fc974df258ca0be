"""How each signed-in session proved who it is, and the one question every rule asks of it
(DESIGN.md invariant 8): *which factors proved this session, and when?*

A sign-in (:class:`~keyfob.accounts.models.SignIn`) is written when a session is signed in
(:func:`start`, by ``accounts.flows.complete_signin``), and gains proofs when its holder
confirms it is them (:func:`add`). Only flows write them; views and rules ask
:func:`satisfies`, :func:`require` or :func:`recent_auth`.

A proof dies with what made it: :func:`authenticator_gone` (a key removed or flagged as a
possible copy, an app removed) and :func:`factors_gone` (the password changed, 2FA turned
off). A dead proof is kept, marked, for the Security page; it answers no question.

accounts does not know which second factors an account has (twofactor does, above it):
twofactor hands :func:`set_second_factor_rule` the rule at start-up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest

from keyfob.accounts.app_settings import app_settings
from keyfob.accounts.errors import ReauthRequired
from keyfob.accounts.models import Factor, Proof, SignIn, User
from keyfob.audit.events import Context
from keyfob.core import clock

__all__ = [
    "APP",
    "KEY",
    "KEYS",
    "KNOWLEDGE",
    "SECOND_FACTORS",
    "Factor",
    "Made",
    "ReauthRequired",
    "add",
    "authenticator_gone",
    "current",
    "digest",
    "factors_gone",
    "live_proofs",
    "recent_auth",
    "rekeyed",
    "require",
    "require_recent_auth",
    "satisfies",
    "set_second_factor_rule",
    "start",
]

# What made a proof, named generically (``Proof.authenticator_kind``).
APP = "app"
KEY = "key"

# A key's signature cannot be relayed by a phishing page (the staff rule).
KEYS = frozenset({Factor.SECURITY_KEY, Factor.PASSKEY})
# Each proves possession of something the account holds. A trusted browser is not one: it
# lets a sign-in skip the code, and grants nothing more.
SECOND_FACTORS = frozenset({Factor.APP_CODE, Factor.RECOVERY, Factor.SECURITY_KEY, Factor.PASSKEY})
# What stands for the password: a passkey verified its user (PIN, fingerprint) itself.
KNOWLEDGE = frozenset({Factor.PASSWORD, Factor.PASSKEY})


@dataclass(frozen=True)
class Made:
    """A proof as a flow hands it over: the factor, and the authenticator that made it."""

    factor: Factor
    authenticator_kind: str = ""
    authenticator_id: int | None = None
    name: str = ""
    user_verified: bool = False


PASSWORD = Made(Factor.PASSWORD)

# The second factors an account must show for a recent authentication, or None when the
# password alone is all it has. Set by twofactor (set_second_factor_rule).
SecondFactorRule = Callable[[User], frozenset[str] | None]
_rule: list[SecondFactorRule] = [lambda user: None]


def set_second_factor_rule(rule: SecondFactorRule) -> None:
    _rule[0] = rule


def digest(session_key: str) -> str:
    return hashlib.sha256(session_key.encode()).hexdigest()


_CACHED = "keyfob_signin"


def current(request: HttpRequest) -> SignIn | None:
    """The live sign-in of the session of ``request`` for the account signed in, or None."""
    user = getattr(request, "user", None)
    key = request.session.session_key if hasattr(request, "session") else None
    if user is None or not user.is_authenticated or not key:
        return None
    wanted = digest(key)
    cached: SignIn | None = getattr(request, _CACHED, None)
    if cached is not None and cached.session_digest == wanted and cached.user_id == user.pk:
        return cached
    row = SignIn.objects.filter(
        session_digest=wanted, user_id=user.pk, ended_at__isnull=True
    ).first()
    setattr(request, _CACHED, row)
    return row


def start(request: HttpRequest, user: User, made: Iterable[Made]) -> SignIn:
    """Record that the session of ``request`` (just signed in as ``user``, under a new
    session id) proved ``made``; return its sign-in. Inside the caller's transaction."""
    if request.session.session_key is None:
        request.session.save()
    key = request.session.session_key
    assert key is not None
    context = Context.from_request(request)
    now = clock.now()
    # A row left under this digest (a session id cannot come back, but be sure): it ends.
    SignIn.objects.filter(session_digest=digest(key)).delete()
    row = SignIn.objects.create(
        session_digest=digest(key),
        user=user,
        started_at=now,
        last_seen_at=now,
        address=context.address,
        user_agent=context.user_agent,
    )
    _write(row, made, now)
    setattr(request, _CACHED, row)
    return row


def add(request: HttpRequest, made: Iterable[Made]) -> None:
    """The holder of this signed-in session proved ``made`` again just now ("Confirm it is
    you", a step-up). A signed-in session with no sign-in record (one from before records
    were kept) gets one."""
    row = current(request)
    user = request.user
    assert isinstance(user, User)
    with transaction.atomic():
        if row is None:
            start(request, user, made)
        else:
            _write(row, made, clock.now())


def rekeyed(request: HttpRequest, old_key: str | None) -> None:
    """The session of ``request`` was given a new id (a password change keeps it signed
    in that way): its sign-in follows."""
    new_key = request.session.session_key
    if old_key and new_key and old_key != new_key:
        SignIn.objects.filter(session_digest=digest(old_key)).update(session_digest=digest(new_key))
        if hasattr(request, _CACHED):
            delattr(request, _CACHED)


def _write(row: SignIn, made: Iterable[Made], now: datetime) -> None:
    Proof.objects.bulk_create(
        Proof(
            signin=row,
            user_id=row.user_id,
            factor=m.factor,
            authenticator_kind=m.authenticator_kind,
            authenticator_id=m.authenticator_id,
            authenticator_name=m.name[:60],
            user_verified=m.user_verified,
            at=now,
        )
        for m in made
    )


def live_proofs(request: HttpRequest, within: float | None = None) -> list[Proof]:
    """The proofs of this session that still count, made in the last ``within`` seconds
    (any time, for None)."""
    row = current(request)
    if row is None:
        return []
    now = clock.now()
    proofs = Proof.objects.filter(signin=row, revoked_at__isnull=True, at__lte=now)
    if within is not None:
        proofs = proofs.filter(at__gte=now - timedelta(seconds=within))
    return list(proofs)


def satisfies(request: HttpRequest, kinds: Iterable[str], within: float | None = None) -> bool:
    """Whether this session holds a live proof of one of ``kinds`` (made in the last
    ``within`` seconds, or ever)."""
    wanted = set(kinds)
    return any(p.factor in wanted for p in live_proofs(request, within))


def require(request: HttpRequest, kinds: Iterable[str], within: float | None = None) -> None:
    """Raise :class:`ReauthRequired` unless :func:`satisfies`."""
    if not satisfies(request, kinds, within):
        raise ReauthRequired()


def recent_auth(request: HttpRequest, max_age: float) -> bool:
    """Whether every factor the account must show was proven in the last ``max_age`` s: the
    password (or a passkey), and, with 2FA, a second factor the account's rule accepts
    (staff with a key: only a key; a trusted browser never)."""
    user = getattr(request, "user", None)
    if not isinstance(user, User):
        return False
    fresh = {p.factor for p in live_proofs(request, max_age)}
    if not fresh & KNOWLEDGE:
        return False
    needed = _rule[0](user)
    return needed is None or bool(fresh & needed)


def require_recent_auth(request: HttpRequest) -> None:
    """Raise :class:`ReauthRequired` unless :func:`recent_auth` within
    ``KEYFOB_REAUTH_SECONDS``: the flows of sensitive changes call it themselves, whatever
    guard their view has (DESIGN.md invariant 7)."""
    if not recent_auth(request, app_settings.reauth_seconds):
        raise ReauthRequired()


def authenticator_gone(user: User, kind: str, pk: int) -> int:
    """The authenticator ``kind``/``pk`` of ``user`` was removed or can no longer be
    believed: the proofs it made stop counting, in every session. Returns how many."""
    return Proof.objects.filter(
        user=user, authenticator_kind=kind, authenticator_id=pk, revoked_at__isnull=True
    ).update(revoked_at=clock.now())


def factors_gone(user: User, factors: Iterable[str]) -> int:
    """Proofs of ``factors`` stop counting in every session of ``user`` (a new password,
    2FA turned off). Returns how many."""
    return Proof.objects.filter(
        user=user, factor__in=list(factors), revoked_at__isnull=True
    ).update(revoked_at=clock.now())
