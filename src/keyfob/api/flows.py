"""What the API does: server tokens, Unix login links, and SSH code verification.

The codes themselves are checked by :mod:`keyfob.twofactor.flows`, so SSH shares the
portal's compare-and-set, throttle and recovery codes; this module only finds the account
behind a Unix login and turns the outcome into a result a PAM module can act on.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from keyfob.accounts.flows import require_recent_auth
from keyfob.accounts.models import User
from keyfob.api.models import ServerToken, SshLinkRequest, SshLogin
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import Channel, EventKind, NoticeKind
from keyfob.core import clock, compiled
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor.models import Authenticator

# Debian's useradd accepts more, but these are the logins worth linking: no spaces, no
# colon or slash, nothing a shell or a PAM argument would split.
LOGIN_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\Z")
SERVER_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
TOKEN_RE = re.compile(r"\Akfs_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})\Z")
MAX_CODE = 64
# last_used_at is written at most this often per token: a verify costs no extra write.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# A server's request to link a login waits this long for the account's answer.
REQUEST_LIFETIME = timedelta(days=7)
# Live requests one server may have waiting on one account: a hostile server can fill its
# own share of the customer's Security page, never another server's.
MAX_REQUESTS_PER_SERVER = 10


class ApiError(KeyfobError):
    """A refusal the API reports as ``{"error": {"code", "message"}}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def valid_login(login: object) -> bool:
    return isinstance(login, str) and LOGIN_RE.fullmatch(login) is not None


def valid_server(name: object) -> bool:
    return isinstance(name, str) and SERVER_RE.fullmatch(name) is not None


# Server tokens -------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# What a request's token check reads of its row.
TOKEN_FIELDS = ("id", "name", "digest", "can_manage_links", "last_used_at")
# One indexed read of the columns a check uses (no ORDER BY: the key is unique).
_TOKEN = compiled.Select(
    ServerToken,
    lambda key: (
        ServerToken.objects.filter(key=key, revoked_at__isnull=True)
        .only(*TOKEN_FIELDS)
        .order_by()[:1]
    ),
    key="",
)
# A digest to compare against when no row matches, so a miss costs what a hit costs.
_DUMMY_DIGEST = _digest("kfs_" + "0" * 16 + "_" + "0" * 43)


def create_token(name: str, *, manage_links: bool = False) -> tuple[ServerToken, str]:
    """Make a token for server ``name``; return the row and the token (shown once).

    Raises :class:`ApiError` ("invalid_name", "name_taken").
    """
    if not valid_server(name):
        raise ApiError("invalid_name", "a server name is letters, digits, '.', '_' and '-'")
    key = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(16))
    token = f"kfs_{key}_{secrets.token_urlsafe(32)}"
    try:
        with transaction.atomic():
            row = ServerToken.objects.create(
                name=name, key=key, digest=_digest(token), can_manage_links=manage_links
            )
    except IntegrityError:
        raise ApiError("name_taken", f"a token named {name!r} already exists") from None
    return row, token


def revoke_token(name: str) -> bool:
    """Revoke the token of server ``name``; return False if there is no active one."""
    return (
        ServerToken.objects.filter(name=name, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        == 1
    )


def _bearer(header: str) -> tuple[str, str | None]:
    """The token an ``Authorization: Bearer …`` header carries, and its key (None when
    the token is malformed)."""
    scheme, _sep, token = header.partition(" ")
    token = token.strip()
    match = TOKEN_RE.fullmatch(token) if scheme.lower() == "bearer" else None
    return token, None if match is None else match.group(1)


def _checked(row: ServerToken | None, token: str) -> ServerToken | None:
    """``row`` if ``token`` is the one it was made for, else None; marks it used."""
    # Compare a digest either way, in constant time; the key alone proves nothing.
    expected = row.digest if row is not None else _DUMMY_DIGEST
    if not hmac.compare_digest(expected, _digest(token)) or row is None:
        return None
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        ServerToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def authenticate(header: str) -> ServerToken | None:
    """The active token an ``Authorization: Bearer …`` header carries, or None.

    Changes nothing but the token's ``last_used_at`` (at most once a minute).
    """
    token, key = _bearer(header)
    row = None
    if key is not None:
        row = next(_TOKEN.rows({"key": key}), None)
    return _checked(row, token)


# Login links ---------------------------------------------------------------------------


def _check_link(login: str, server: str) -> None:
    """Raises :class:`ApiError` ("invalid_login", "server_required", "invalid_server")."""
    if not valid_login(login):
        raise ApiError("invalid_login", "a login is up to 32 letters, digits, '.', '_', '-'")
    if not server:
        raise ApiError(
            "server_required",
            "name the server: a link holds only for the server token of that name",
        )
    if not valid_server(server):
        raise ApiError("invalid_server", "a server name is letters, digits, '.', '_' and '-'")


def _holder(login: str, server: str, user: User | None) -> SshLogin | None:
    """The link in force for ``login`` on ``server`` if it is ``user``'s; raises
    :class:`ApiError` ("login_taken") when another account holds it there, or holds it with
    an old link for every server (made before issue 15, no longer in force, but a new link
    must not quietly take it over)."""
    existing = SshLogin.objects.filter(login=login, server=server).first()
    claimed = SshLogin.objects.filter(login=login, server="")
    if user is not None:
        claimed = claimed.exclude(user=user)
    if (existing is not None and existing.user_id != getattr(user, "pk", None)) or (
        claimed.exists()
    ):
        raise ApiError("login_taken", "this login is linked to another account")
    return existing


def _make_link(user: User, login: str, server: str, context: Context, **detail: str) -> SshLogin:
    """Create the link (in the caller's transaction), end the requests it answers, record
    and mail it."""
    row = SshLogin.objects.create(login=login, server=server, user=user)
    SshLinkRequest.objects.filter(login=login, server=server).delete()
    record(user, EventKind.SSH_LINKED, context, login=login, server=server, **detail)
    notices.queue(user, NoticeKind.SSH_LINKED, context, login=login, server=server)
    return row


def link(user: User, login: str, server: str, context: Context) -> SshLogin:
    """Link Unix ``login`` on ``server`` (a server token's name) to ``user`` at once: the
    operator's path (``keyfob ssh-link``), trusted as the operator is. A server's token asks
    instead (:func:`request_link`), and the account confirms (:func:`confirm_request`).

    Only that server's token reaches the login: a link is the account's grant of one
    server. There is no link for every server any more (issue 15: any server's token, a
    customer's own included, could verify, probe and throttle-lock such a login). The
    account is mailed.

    Idempotent for the same account. Raises :class:`ApiError` ("invalid_login",
    "server_required", "invalid_server", "login_taken" when the login is another
    account's on that server, or another account's old link for every server).
    """
    _check_link(login, server)
    with transaction.atomic():
        existing = _holder(login, server, user)
        if existing is not None:
            return existing
        return _make_link(user, login, server, context)


class LinkState(StrEnum):
    """What a server's request to link a login became (``status`` in the API's answer)."""

    LINKED = "linked"  # the account already holds the login on that server
    PENDING = "pending"  # asked, or nothing to ask: the answer does not say which


def request_link(
    email: str, login: str, server: str, context: Context
) -> tuple[LinkState, SshLogin | None]:
    """A server's token asks that its Unix ``login`` be linked to the account of ``email``.

    Nothing is in force until the account's owner confirms it on their Security page
    (:func:`confirm_request`); they are mailed (at most one such mail an hour). The answer is
    PENDING whether or not an account has that address (the API never says), LINKED with
    the link when that account already holds the login on ``server`` (which the server's
    own listing shows anyway). A request already waiting is not asked again.

    Raises :class:`ApiError` ("invalid_login", "server_required", "invalid_server",
    "login_taken" when another account holds the login on ``server``: the listing shows
    that too).
    """
    _check_link(login, server)
    now = clock.now()
    user = User.objects.filter(email=email, is_active=True).first()
    with transaction.atomic():
        # An old link for every server claims its login against any request, its own
        # account's included, so that the answer says nothing about whose it is: the
        # operator links such a login (``keyfob ssh-link``).
        if SshLogin.objects.filter(login=login, server="").exists():
            raise ApiError("login_taken", "this login is linked to another account")
        existing = _holder(login, server, user)
        if existing is not None:
            return LinkState.LINKED, existing
        if user is None:
            return LinkState.PENDING, None
        # One request at a time per account: the count below and the insert stay together,
        # and the same request sent twice at once is asked (and mailed) once.
        User.objects.select_for_update().filter(pk=user.pk).first()
        live = SshLinkRequest.objects.filter(user=user, created_at__gt=now - REQUEST_LIFETIME)
        if live.filter(login=login, server=server).exists():
            return LinkState.PENDING, None
        if live.filter(server=server).count() >= MAX_REQUESTS_PER_SERVER:
            return LinkState.PENDING, None
        # Expired requests go (every account's: there is no other pruning of them), and an
        # expired request of this login is asked again, as new.
        SshLinkRequest.objects.filter(created_at__lte=now - REQUEST_LIFETIME).delete()
        SshLinkRequest.objects.filter(login=login, server=server, user=user).delete()
        SshLinkRequest.objects.create(login=login, server=server, user=user, created_at=now)
        record(user, EventKind.SSH_LINK_REQUESTED, context, login=login, server=server)
        notices.queue(user, NoticeKind.SSH_LINK_REQUESTED, context, login=login, server=server)
    return LinkState.PENDING, None


def requests_of(user: User) -> list[SshLinkRequest]:
    """The account's requests still waiting for its answer, newest first."""
    since = clock.now() - REQUEST_LIFETIME
    return list(SshLinkRequest.objects.filter(user=user, created_at__gt=since))


def waiting_request(user: User, pk: int) -> SshLinkRequest:
    """The account's request ``pk`` if it is still waiting; raises
    ``SshLinkRequest.DoesNotExist`` otherwise (another account's, answered, expired)."""
    since = clock.now() - REQUEST_LIFETIME
    return SshLinkRequest.objects.get(pk=pk, user=user, created_at__gt=since)


def confirm_request(request: HttpRequest, user: User, pk: int) -> SshLogin:
    """The account's owner links the login a server asked for: from now on that server's
    token verifies the login with the account's codes (and its wrong codes count on the
    account's throttle). Needs a recent re-authentication, records SSH_LINKED and mails
    the account.

    Raises ``ReauthRequired``, ``SshLinkRequest.DoesNotExist`` (not waiting any more) and
    :class:`ApiError` ("login_taken": another account confirmed it first).
    """
    require_recent_auth(request)
    context = Context.from_request(request)
    try:
        with transaction.atomic():
            asked = waiting_request(user, pk)
            existing = _holder(asked.login, asked.server, user)
            if existing is not None:  # linked meanwhile (the operator, another tab)
                asked.delete()
                return existing
            return _make_link(user, asked.login, asked.server, context, confirmed="user")
    except IntegrityError:  # another account confirmed the same login at the same moment
        raise ApiError("login_taken", "this login is linked to another account") from None


def decline_request(request: HttpRequest, user: User, pk: int) -> SshLinkRequest:
    """The account's owner refuses a server's request; records SSH_LINK_DECLINED. Raises
    ``SshLinkRequest.DoesNotExist``."""
    context = Context.from_request(request)
    with transaction.atomic():
        asked = waiting_request(user, pk)
        asked.delete()
        record(user, EventKind.SSH_LINK_DECLINED, context, login=asked.login, server=asked.server)
    return asked


def unlink(login: str, server: str, context: Context) -> bool:
    """Remove the link of ``login`` on ``server``, and withdraw the requests waiting to
    link it there; return False when there was no link (whatever the requests)."""
    with transaction.atomic():
        SshLinkRequest.objects.filter(login=login, server=server).delete()
        row = SshLogin.objects.select_related("user").filter(login=login, server=server).first()
        if row is None:
            return False
        row.delete()
        record(row.user, EventKind.SSH_UNLINKED, context, login=login, server=server)
    return True


# An account behind a Unix login: the user and its confirmed authenticator apps (none
# without 2FA).
Account = tuple[User, list[Authenticator]]


# What a code check reads of an account's authenticator apps: the rest of the row would
# load on access (a query; tests/core/test_query_counts.py would see it).
APP_FIELDS = (
    *("id", "user_id", "name", "kind", "secret_encrypted", "algorithm", "digits", "period"),
    *("last_step", "counter", "confirmed_at"),
)
# The confirmed apps of the active account a login on a server belongs to, in the order
# they were added (the first one a code matches is the one it is for).
_APPS = compiled.Select(
    Authenticator,
    lambda login, server: Authenticator.objects.filter(
        user__ssh_logins__login=login,
        user__ssh_logins__server=server,
        user__is_active=True,
        confirmed_at__isnull=False,
    ).only(*APP_FIELDS),
    login="",
    server="",
)


def account_for(login: str, server: str) -> Account | None:
    """The active account ``login`` belongs to on ``server`` (a token's name), with its
    confirmed authenticator apps, or None. Only a link on that very server counts, so a
    token reaches no other server's logins; an old link for every server (``server`` "",
    which no token is named) reaches none.

    One query for an account with an app, which is every SSH login that can give a code:
    its apps, through the link. The account is then known by its id only (it is active,
    the query said so); any other field loads on access. An account without an app (2FA
    off, security keys only, or no such login) takes a second query, of the link and
    account.
    """
    apps = list(_APPS.rows({"login": login, "server": server}))
    if apps:
        user = User.from_db("default", ["id", "is_active"], [apps[0].user_id, True])
        for app in apps:
            app.user = user  # one account object for all, as the flows expect
        return user, apps
    link = SshLogin.objects.select_related("user").filter(login=login, server=server).first()
    if link is None or not link.user.is_active:
        return None
    return link.user, []


def authenticate_for(header: str, login: str) -> tuple[ServerToken, Account | None] | None:
    """:func:`authenticate`, then :func:`account_for` on the token's server.

    None when the header carries no valid token; else the token and the account.
    """
    row = authenticate(header)
    if row is None:
        return None
    return row, account_for(login, row.name)


def logins_of(user: User) -> list[SshLogin]:
    return list(SshLogin.objects.filter(user=user))


# Verification --------------------------------------------------------------------------


class Result(StrEnum):
    """What the API answers about a login's code (``result`` in its JSON)."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    THROTTLED = "throttled"
    NOT_ENROLLED = "not_enrolled"
    UNKNOWN_LOGIN = "unknown_login"
    CODE_REQUIRED = "code_required"  # ssh/check: the login would be asked for a code


@dataclass(frozen=True)
class Outcome:
    result: Result
    retry_after: int | None = None

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"result": self.result.value}
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        return data


def ssh_context(server: str, address: str | None, reported: str | None = None) -> Context:
    """An SSH attempt on ``server``: ``address`` is the server's own (the request's peer),
    ``reported`` the SSH client's as the server says (recorded as such, beside it)."""
    return Context(
        channel=Channel.SSH,
        address=address,
        user_agent=f"ssh:{server}"[:300],
        reported_address=reported,
    )


def is_recovery_code(code: str) -> bool:
    """A code with a letter in it is a recovery code; digits (and spaces) are a one-time code."""
    return any(c.isascii() and c.isalpha() for c in code)


def verify(
    account: Account | None, login: str, server: str, code: str, context: Context
) -> Outcome:
    """Check ``code`` for ``account`` (:func:`account_for` of ``login`` on ``server``);
    never raises for the code.

    A success is recorded as a sign-in on the SSH channel, in the transaction that consumed
    the code; failures are recorded (and counted) by the twofactor flows.
    """
    if account is None:
        return Outcome(Result.UNKNOWN_LOGIN)
    user, auths = account
    compact = code.replace(" ", "")
    factor = twofactor.Factor.RECOVERY if is_recovery_code(compact) else twofactor.Factor.CODE
    signed_in = (EventKind.SIGNIN_OK, {"login": login, "server": server, "factor": factor})
    if factor == twofactor.Factor.CODE and not auths:
        # An account whose 2FA is security keys only has no code an SSH prompt can take
        # (its recovery codes still work): refused, never waved through as not enrolled.
        return Outcome(Result.REJECTED if twofactor.has_2fa(user) else Result.NOT_ENROLLED)
    try:
        if factor == twofactor.Factor.RECOVERY:
            # The account was read by its id only (account_for); a recovery code's notice
            # needs the rest of it (address, language): one read, not one per field.
            user = User.objects.get(pk=user.pk)
            twofactor.use_recovery_code(user, compact, context, event=signed_in)
        else:
            twofactor.verify_code(user, compact, context, event=signed_in, authenticators=auths)
    except Throttled as exc:
        return Outcome(Result.THROTTLED, max(1, math.ceil(exc.retry_after)))
    except twofactor.NotEnrolled:
        return Outcome(Result.NOT_ENROLLED)
    except (InvalidCode, CodeReused):
        return Outcome(Result.REJECTED)
    return Outcome(Result.ACCEPTED)


def check(server: str, login: str) -> Outcome:
    """Whether ``login`` would be asked for a code: ``code_required``, ``not_enrolled`` or
    ``unknown_login``. Reads only (the PAM module's ``nullok`` asks before prompting)."""
    found = account_for(login, server)
    if found is None:
        return Outcome(Result.UNKNOWN_LOGIN)
    user, apps = found
    enrolled = bool(apps) or twofactor.has_2fa(user)  # keys only: asked, recovery codes work
    return Outcome(Result.CODE_REQUIRED if enrolled else Result.NOT_ENROLLED)
