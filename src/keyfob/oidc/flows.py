"""What the provider does besides the protocol (which is django-oauth-toolkit's): the
sign-in record an app's tokens carry, consent, the apps a person let in, the operator's
clients. Each saves, records and notifies in one transaction (STYLE.md)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from keyfob.accounts import proofs
from keyfob.accounts.models import Proof, SignIn, User
from keyfob.audit import notices
from keyfob.audit.events import Context, client_address, record
from keyfob.audit.models import EventKind, NoticeKind, Outbox
from keyfob.core import clock, throttle
from keyfob.core.models import Throttle
from keyfob.oidc import backchannel, claims, logout_token
from keyfob.oidc.models import Authorization, Client, Consent
from keyfob.teams import rules
from keyfob.teams.app_settings import app_settings as teams_settings

log = logging.getLogger("keyfob.oidc")

# What the library generates (40 alphanumerics) and a little more; a longer or stranger
# value is not a client id, and is never written to a log or a throttle key as it is.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# A token request's errors that count against its client: wrong credentials, or a code,
# refresh token or device code it does not hold (the library answers an unknown device
# code "device_not_found", 404). Not authorization_pending or slow_down (a device
# polling as it should), nor an unsupported grant type.
COUNTED_ERRORS = frozenset({"invalid_client", "invalid_grant", "device_not_found"})


@dataclass(frozen=True)
class ClientCall:
    """One request of a client to the token or device endpoint: the throttle key it is
    counted under, and what the log line names."""

    key: str
    label: str
    address: str
    row: Throttle | None


def client_call(request: HttpRequest, client_id: str) -> ClientCall:
    """What ``request`` (claiming to be ``client_id``) is counted under: the client and
    the address, or "unknown" and the address for an id no client has (so junk ids make
    one row per address, not one per id)."""
    address = client_address(request) or "unknown"
    known = (
        bool(_CLIENT_ID.fullmatch(client_id))
        and Client.objects.filter(client_id=client_id).exists()
    )
    label = client_id if known else "unknown"
    key = f"{label} {address}"
    row = Throttle.objects.filter(scope=throttle.OIDC_CLIENT.scope, key=key).first()
    return ClientCall(key, label, address, row)


def client_wait(call: ClientCall) -> float:
    """Seconds before this client may send another request from this address (0.0: now).
    Read without a lock: the count itself is kept under the row's lock (client_answered)."""
    if call.row is None:
        return 0.0
    wait = throttle.retry_after(throttle.OIDC_CLIENT, call.row)
    if wait:
        log.warning("token requests refused for now: client %s from %s", call.label, call.address)
    return wait


def client_answered(call: ClientCall, error: str | None) -> None:
    """The endpoint answered ``error`` (None: success). A failure that counts is counted
    (and a wrong client authentication logged, never with what was sent); a success
    clears the count."""
    if error == "invalid_client":
        log.warning("client authentication failed: client %s from %s", call.label, call.address)
    if error in COUNTED_ERRORS:
        with transaction.atomic():
            row = throttle.acquire(throttle.OIDC_CLIENT, call.key)
            throttle.record_failure(throttle.OIDC_CLIENT, row)
    elif error is None and call.row is not None and call.row.consecutive:
        with transaction.atomic():
            throttle.reset(throttle.acquire(throttle.OIDC_CLIENT, call.key))


def issuer(request: HttpRequest) -> str:
    """The issuer URL (``iss``): the setting, or this request's origin."""
    from oauth2_provider.settings import oauth2_settings

    return str(oauth2_settings.oidc_issuer(request))


def session_strength(request: HttpRequest) -> claims.Strength:
    """How strongly the session of ``request`` signed in, from its live proofs."""
    return claims.strength(proofs.live_proofs(request))


def signin_strength(signin: SignIn | None) -> claims.Strength | None:
    """The strength a sign-in record's live proofs give now, or None for a record that
    ended (or was pruned)."""
    if signin is None or signin.ended_at is not None:
        return None
    return claims.strength(Proof.objects.filter(signin=signin, revoked_at__isnull=True))


def authorization_for(request: HttpRequest, client: Client) -> Authorization:
    """Record that the signed-in session of ``request`` lets ``client`` in now, with how it
    signed in (saved by the caller's grant: the code or the device grant links to it)."""
    user = request.user
    assert isinstance(user, User)
    live = proofs.live_proofs(request)
    strength = claims.strength(live)
    signin = proofs.current(request)
    return Authorization(
        user=user,
        client=client,
        signin=signin,
        sid=logout_token.sid_for(signin.pk) if signin is not None else "",
        issuer=issuer(request),
        auth_time=strength.auth_time or clock.now(),
        amr=strength.amr,
        acr=strength.acr,
        factors=sorted({str(p.factor) for p in live}),
    )


def factors_now(found: Authorization) -> set[str]:
    """The factors a token of ``found`` speaks for now: its sign-in record's live proofs
    while the record lives (a key removed since takes its proof away, a key proved since
    in the same session adds one), else the factors stored when the app was let in."""
    signin = found.signin
    if signin is not None and signin.ended_at is None:
        return {
            str(factor)
            for factor in Proof.objects.filter(
                signin=signin, revoked_at__isnull=True, at__lte=clock.now()
            ).values_list("factor", flat=True)
        }
    return set(found.factors)


def authorization_of_token(access: Any) -> Authorization | None:
    """The authorization an access token came from, through its refresh token family
    (the one the token was refreshed from, or the one issued with it)."""
    source = getattr(access, "source_refresh_token", None)
    family = source.token_family if source is not None else None
    if family is None:
        found = get_refresh_token_model().objects.filter(access_token=access).first()
        family = found.token_family if found is not None else None
    if family is None:
        return None
    return (
        Authorization.objects.select_related("signin")
        .filter(token_family=family, user_id=access.user_id)
        .first()
    )


def token_factors(access: Any) -> set[str]:
    """The factors of the session that approved the app an access token was given to (the
    SSH certificate endpoint's hook, ``api.views.TOKEN_FACTORS``, set by the site): none
    when the token leads to no live authorization."""
    found = authorization_of_token(access)
    if found is None or found.ended_at is not None:
        return set()
    return factors_now(found)


# --- What a grant gives an app (issue 27) ------------------------------------------------

# The claim and the scope that asks for it (README, "Claims").
GRANTS_CLAIM = "keyfob_grants"
GRANTS_SCOPE = "grants"


def grants_claim(found: Authorization | None, user: User) -> list[dict[str, Any]]:
    """The ``keyfob_grants`` claim: for each account ``user`` may act for in the session of
    ``found``, ``{"account": the owner's sub, "name": their name, "rights": [...]}``. Only
    grants that count for that session's proofs (teams.rules); a grant that waits for a
    stronger proof is absent. The accounts listed are remembered on ``found``, so removing
    the member from one revokes the tokens that carried it."""
    factors = factors_now(found) if found is not None else set()
    counting, _waiting = rules.split(user, factors)
    known = set(teams_settings.rights)
    out = [
        {
            "account": str(grant.owner_id),
            "name": grant.owner.get_full_name(),
            "rights": [right for right in grant.rights if right in known],
        }
        for grant in counting
    ]
    if found is not None and found.pk is not None:
        listed = sorted(set(found.acts_for) | {int(grant.owner_id) for grant in counting})
        if listed != sorted(found.acts_for):
            Authorization.objects.filter(pk=found.pk).update(acts_for=listed)
            found.acts_for = listed
    return out


def grant_withdrawn(grant: Any) -> list[Authorization]:
    """A grant ended (the member removed or gone) or changed: the member's live
    authorizations whose tokens listed the owner's account end, their tokens are revoked
    and their apps owed a back-channel logout (in the caller's transaction). The next
    sign-in gets the claim as it now stands. Returns the authorizations ended."""
    owner_id = int(grant.owner_id)
    live = Authorization.objects.select_related("client", "user").filter(
        user_id=grant.member_id, ended_at__isnull=True
    )
    # acts_for is a short JSON list: filtered here, as JSON containment is not portable.
    ended = [found for found in live if owner_id in found.acts_for]
    if not ended:
        return []
    Authorization.objects.filter(pk__in=[a.pk for a in ended]).update(ended_at=clock.now())
    families = [a.token_family for a in ended if a.token_family is not None]
    if families:
        revoke_tokens(ended[0].user, families=families)
    backchannel.queue(ended)
    return ended


def has_consent(user: User, client: Client, scopes: Iterable[str]) -> bool:
    """Whether ``user`` allowed ``client`` these scopes already (first-party apps need not)."""
    if client.skip_authorization:
        return True
    row = Consent.objects.filter(user=user, client=client).first()
    return row is not None and set(scopes) <= set(row.scopes.split())


def give_consent(request: HttpRequest, user: User, client: Client, scopes: Iterable[str]) -> None:
    """``user`` pressed "Allow": remembered until revoked, recorded."""
    wanted = set(scopes)
    with transaction.atomic():
        row, created = Consent.objects.select_for_update().get_or_create(
            user=user, client=client, defaults={"scopes": " ".join(sorted(wanted))}
        )
        if not created and not wanted <= set(row.scopes.split()):
            row.scopes = " ".join(sorted(wanted | set(row.scopes.split())))
            row.save(update_fields=["scopes"])
        if created or wanted - set(row.scopes.split()):
            record(user, EventKind.APP_ALLOWED, Context.from_request(request), app=client.name)


def signed_in_to_app(request: HttpRequest, user: User, client: Client) -> None:
    """An app got an authorization code or a device approval: an event, and a notice at
    most once a day per app (an app used every hour should not bury the others)."""
    context = Context.from_request(request)
    now = clock.now()
    with transaction.atomic():
        record(user, EventKind.APP_SIGNIN, context, app=client.name, client=client.client_id)
        Consent.objects.filter(user=user, client=client).update(last_used_at=now)
        User.objects.select_for_update().filter(pk=user.pk).first()
        recent = Outbox.objects.filter(
            user=user,
            kind=NoticeKind.APP_SIGNIN,
            created_at__gt=now - timedelta(days=1),
            params__client=client.client_id,
        )
        if not recent.exists():
            notices.queue(
                user, NoticeKind.APP_SIGNIN, context, app=client.name, client=client.client_id
            )


def refused(request: HttpRequest, user: User, client: Client, wanted: str) -> None:
    """An app asked for more than this session proved and the person could not give it."""
    record(
        user, EventKind.APP_REFUSED, Context.from_request(request), app=client.name, wanted=wanted
    )


@dataclass(frozen=True)
class AppAccess:
    consent_pk: int
    client: Client
    granted_at: Any
    last_used_at: Any
    scopes: list[str]


def apps_of(user: User) -> list[AppAccess]:
    """The apps ``user`` allowed to sign them in (first-party apps are not listed: the
    provider's own, they need no consent)."""
    rows = (
        Consent.objects.filter(user=user, client__revoked_at__isnull=True)
        .select_related("client")
        .order_by("client__name", "pk")
    )
    return [AppAccess(r.pk, r.client, r.granted_at, r.last_used_at, r.scopes.split()) for r in rows]


class NoSuchApp(Exception):
    """Not an app this account allowed."""


def revoke_app(request: HttpRequest, user: User, consent_pk: int) -> str:
    """Remove an app's permission to sign ``user`` in: the consent goes, every token the
    app holds for ``user`` is revoked, and the app's sessions for ``user`` are ended by a
    back-channel logout (if it registered a URI). Needs a recent confirmation. Returns the
    app's name."""
    proofs.require_recent_auth(request)
    with transaction.atomic():
        row = Consent.objects.select_for_update().filter(user=user, pk=consent_pk).first()
        if row is None:
            raise NoSuchApp()
        client = row.client
        row.delete()
        revoke_tokens(user, client=client)
        live = Authorization.objects.select_related("client").filter(
            user=user, client=client, ended_at__isnull=True
        )
        ended = list(live)
        live.update(ended_at=clock.now())
        backchannel.queue(ended)
        record(user, EventKind.APP_REVOKED, Context.from_request(request), app=client.name)
    return client.name


def revoke_tokens(user: User, *, client: Client | None = None, families: Iterable[Any] = ()) -> int:
    """Revoke the refresh and access tokens of ``user`` (for ``client`` only, or of the token
    ``families`` only). Returns how many refresh tokens were revoked."""
    refresh = get_refresh_token_model().objects.filter(user=user, revoked__isnull=True)
    access = get_access_token_model().objects.filter(user=user)
    wanted = list(families)
    if client is not None:
        refresh = refresh.filter(application=client)
        access = access.filter(application=client)
    if wanted:
        refresh = refresh.filter(token_family__in=wanted)
        access = access.filter(source_refresh_token__token_family__in=wanted)
    count = 0
    for token in refresh:
        token.revoke()
        count += 1
    # Access tokens with no refresh token left (or never had one) go too.
    access.delete()
    return count


def end_signins(user_id: int, signin_ids: Iterable[int]) -> list[Authorization]:
    """Sessions ended (signed out, everywhere else, a password reset, support): what their
    sign-ins let in ends with them, their tokens are revoked, and each app that registered
    a back-channel logout URI is owed a logout token per session (queued here, in the
    caller's transaction). Returns the authorizations ended."""
    ids = list(signin_ids)
    if not ids:
        return []
    now = clock.now()
    ended = list(
        Authorization.objects.select_related("client", "user").filter(
            user_id=user_id, signin_id__in=ids, ended_at__isnull=True
        )
    )
    if not ended:
        return []
    Authorization.objects.filter(pk__in=[a.pk for a in ended]).update(ended_at=now)
    families = [a.token_family for a in ended if a.token_family is not None]
    if families:
        revoke_tokens(ended[0].user, families=families)
    backchannel.queue(ended)
    return ended


# --- The operator's clients (keyfob oidc-client) ---------------------------------------


class ClientError(ValueError):
    """A client the operator described cannot be registered; the message says why."""


def create_client(
    name: str,
    redirect_uris: list[str],
    *,
    public: bool = False,
    first_party: bool = False,
    require_phishing_resistant: bool = False,
    device: bool = False,
    backchannel_logout_uri: str = "",
    post_logout_redirect_uris: list[str] | None = None,
) -> tuple[Client, str]:
    """Register an app; return it and its secret (shown once, stored hashed; "" for a public
    client). Raises :class:`ClientError`."""
    from django.core.exceptions import ValidationError

    name = name.strip()
    if not name or len(name) > 100:
        raise ClientError("NAME: give the app a name of 1 to 100 characters")
    if device and redirect_uris:
        raise ClientError("--device: a device-grant client has no redirect URI")
    if not device and not redirect_uris:
        raise ClientError("--redirect-uri: give at least one")
    if backchannel_logout_uri and not backchannel.https_or_loopback(backchannel_logout_uri):
        raise ClientError(
            "--backchannel-logout-uri: an https URI (http only to a loopback address), "
            "without a fragment"
        )
    secret = "" if public else Client._meta.get_field("client_secret").get_default()
    client = Client(
        name=name,
        redirect_uris=" ".join(redirect_uris),
        post_logout_redirect_uris=" ".join(post_logout_redirect_uris or []),
        client_type=Client.CLIENT_PUBLIC if public else Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=(
            Client.GRANT_DEVICE_CODE if device else Client.GRANT_AUTHORIZATION_CODE
        ),
        client_secret=secret,
        hash_client_secret=True,
        skip_authorization=first_party,
        algorithm=Client.RS256_ALGORITHM,
        require_phishing_resistant=require_phishing_resistant,
        backchannel_logout_uri=backchannel_logout_uri,
    )
    try:
        client.full_clean(exclude=["client_secret", "user"])
    except ValidationError as exc:
        problems = "; ".join(
            f"{field}: {' '.join(str(m) for m in messages)}"
            for field, messages in exc.message_dict.items()
        )
        raise ClientError(problems) from exc
    client.save()
    return client, str(secret)


def revoke_client(client_id: str) -> Client:
    """Stop an app for good: it can no longer sign anyone in, and its tokens are revoked.

    No back-channel logout is queued: the operator is switching the app itself off (and
    ends its sessions there), and one token per live session could be thousands. Logouts
    queued before still go out."""
    with transaction.atomic():
        client = Client.objects.select_for_update().filter(client_id=client_id).first()
        if client is None:
            raise ClientError(f"no client {client_id!r}")
        client.revoked_at = clock.now()
        client.save(update_fields=["revoked_at"])
        for token in get_refresh_token_model().objects.filter(
            application=client, revoked__isnull=True
        ):
            token.revoke()
        get_access_token_model().objects.filter(application=client).delete()
        Authorization.objects.filter(client=client, ended_at__isnull=True).update(
            ended_at=clock.now()
        )
    return client
