"""The device authorization grant (RFC 8628) beside django-oauth-toolkit's rows: the codes,
where the request came from, the person's approval with how they signed in, and the
device's polls (``slow_down``, single use). The library's views handle HTTP
(``device_views``); what is saved, recorded and checked is here (STYLE.md).

A command-line tool (``keyfob-ssh login``) POSTs its ``client_id`` to the device
authorization endpoint, shows the person ``user_code`` and ``verification_uri`` (or opens
``verification_uri_complete``), then polls the token endpoint with its ``device_code``
until the person approved or denied in the portal, or the code expired.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.urls import reverse
from oauth2_provider.models import get_device_grant_model
from oauthlib.oauth2.rfc8628.grant_types import DeviceCodeGrant

from keyfob.accounts import proofs
from keyfob.accounts.models import User
from keyfob.audit.events import client_address
from keyfob.core import clock, throttle
from keyfob.oidc import flows
from keyfob.oidc.app_settings import app_settings
from keyfob.oidc.models import Authorization, Client, DeviceState
from keyfob.otp import Throttled
from keyfob.twofactor.models import SecurityKey

# 32 letters and digits without 0/O and 1/I, which a person reading a terminal confuses:
# 8 of them are 40 bits, shown as XXXX-XXXX (RFC 8628 section 6.1).
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
# How long a device code and its user code wait for the person (the library's oauthlib
# default is 30 minutes; a sign-in started at a terminal is approved within minutes, and
# a shorter window leaves fewer codes to guess at any time).
LIFETIME = timedelta(minutes=10)
# A device polling faster than its interval is told slow_down and waits 5 s more from then
# on (RFC 8628 section 3.5); the interval never grows past this.
MAX_INTERVAL = 60
# Wrong user codes typed by one account (each a guess at someone's pending request).
USER_CODE = throttle.Policy(
    "device_code", free=5, base=timedelta(seconds=30), cap=timedelta(minutes=15), daily=50
)


def new_user_code() -> str:
    """A user code no pending device grant holds, as shown: ``XXXX-XXXX``
    (``OAUTH_DEVICE_USER_CODE_GENERATOR``)."""
    model = get_device_grant_model()
    while True:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        code = f"{raw[:4]}-{raw[4:]}"
        if not model.objects.filter(user_code=code, expires__gt=clock.now()).exists():
            return code


def normalise(typed: str) -> str | None:
    """The stored form of a code a person typed (any case, with or without the dash or
    spaces), or None when it cannot be one."""
    raw = "".join(typed.split()).replace("-", "").upper()
    if len(raw) != CODE_LENGTH or any(c not in ALPHABET for c in raw):
        return None
    return f"{raw[:4]}-{raw[4:]}"


# --- the device's request ----------------------------------------------------------------


def _origin(request: HttpRequest) -> str:
    """The portal's scheme and host as people reach it: KEYFOB_OIDC_ISSUER's when set."""
    configured = app_settings.issuer
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return request.build_absolute_uri("/").rstrip("/")


def verification_uri(request: HttpRequest) -> str:
    """The absolute URL of "Enter the code shown on your device"."""
    return _origin(request) + reverse("oauth2_provider:device")


def verification_uri_complete(request: HttpRequest, user_code: str) -> str:
    """The same page with the code filled in (for a link or a QR code)."""
    return verification_uri(request) + "?" + urlencode({"user_code": user_code})


def start(request: HttpRequest, client_id: str, answer: dict[str, Any]) -> Any:
    """Save the device grant the library's endpoint answered with (``answer``: its JSON,
    made absolute here) and where it came from. Returns the grant."""
    model = get_device_grant_model()
    now = clock.now()
    answer["verification_uri"] = verification_uri(request)
    answer["verification_uri_complete"] = verification_uri_complete(request, answer["user_code"])
    answer["expires_in"] = int(LIFETIME.total_seconds())
    with transaction.atomic():
        grant = model.objects.create(
            client_id=client_id,
            device_code=answer["device_code"],
            user_code=answer["user_code"],
            scope=answer.get("scope", ""),
            interval=answer["interval"],
            expires=now + LIFETIME,
        )
        DeviceState.objects.create(
            device_grant=grant, address=client_address(request), created_at=now
        )
    return grant


# --- the person: the code, then Approve / Deny -------------------------------------------


class UserCodeError(Exception):
    """A typed user code names no request waiting for approval; ``code`` says why."""

    def __init__(self, code: str, retry_after: float = 0.0) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after


def claim(user: User, typed: str) -> Any:
    """The pending device grant whose user code ``user`` typed, now theirs to approve or
    deny. Every wrong code counts against the account (:data:`USER_CODE`), so codes cannot
    be guessed. Raises :class:`UserCodeError` ("throttled", "incorrect", "expired")."""
    model = get_device_grant_model()
    with transaction.atomic():
        row = throttle.acquire(USER_CODE, str(user.pk))
        try:
            throttle.check(USER_CODE, row)
        except Throttled as exc:
            raise UserCodeError("throttled", exc.retry_after) from None
        code = normalise(typed)
        grant = (
            model.objects.select_for_update().filter(user_code=code).order_by("-pk").first()
            if code is not None
            else None
        )
        if grant is None or grant.status in (model.DENIED, model.AUTHORIZED):
            # A code already used is as good as none: saying so would confirm a guess.
            throttle.record_failure(USER_CODE, row)
            failure = "incorrect"
        elif grant.status == model.EXPIRED or grant.expires <= clock.now():
            failure = "expired"
        else:
            throttle.reset(row)
            grant.user = user
            grant.save(update_fields=["user"])
            return grant
    raise UserCodeError(failure)


@dataclass(frozen=True)
class Pending:
    """A device grant ``user`` may approve or deny now, with what the page shows."""

    grant: Any
    client: Client
    address: str | None
    scopes: list[str]


def pending(user: User, client_id: str, user_code: str) -> Pending | None:
    """The device grant ``user`` claimed with this code for this client, while it waits for
    approval; None otherwise (another client's code, another person's, decided, expired)."""
    model = get_device_grant_model()
    grant = (
        model.objects.filter(
            client_id=client_id,
            user_code=user_code,
            user=user,
            status=model.AUTHORIZATION_PENDING,
            expires__gt=clock.now(),
        )
        .select_related("keyfob_state")
        .first()
    )
    if grant is None:
        return None
    client = Client.objects.filter(client_id=client_id).first()
    if client is None or client.revoked_at is not None:
        return None
    state = getattr(grant, "keyfob_state", None)
    return Pending(
        grant=grant,
        client=client,
        address=state.address if state is not None else None,
        scopes=grant.scope.split(),
    )


def needs_key(user: User, client: Client) -> bool:
    """Whether approving asks for a security key or passkey: the account has one, or the
    app was registered with --require-phishing-resistant."""
    return client.require_phishing_resistant or SecurityKey.objects.filter(user=user).exists()


def cannot_approve(user: User, client: Client) -> bool:
    """The app needs a key and the account has none: only Deny is possible."""
    return client.require_phishing_resistant and not SecurityKey.objects.filter(user=user).exists()


def fresh_enough(request: HttpRequest, client: Client) -> bool:
    """Whether the session of ``request`` proved it is its person in the last
    KEYFOB_REAUTH_SECONDS well enough to approve a device: every factor the account must
    show (the password, and a second factor with 2FA) and, when :func:`needs_key`, a
    security key or passkey among them."""
    user = request.user
    assert isinstance(user, User)
    within = app_settings.reauth_seconds
    if not proofs.recent_auth(request, within):
        return False
    return not needs_key(user, client) or proofs.satisfies(request, proofs.KEYS, within)


class NotWaiting(Exception):
    """The device grant was decided, expired or is not this person's any more."""


class NotFresh(Exception):
    """Approving needs a more recent proof (:func:`fresh_enough`)."""


def decide(request: HttpRequest, client_id: str, user_code: str, *, approve: bool) -> Client:
    """Approve or deny the device grant the person of ``request`` claimed. Approving needs
    :func:`fresh_enough` and saves, in the same transaction, the sign-in record the tokens
    will carry (an :class:`Authorization` linked to the grant) and the APP_SIGNIN event.
    Returns the client. Raises :class:`NotWaiting`, :class:`NotFresh`."""
    user = request.user
    assert isinstance(user, User)
    model = get_device_grant_model()
    with transaction.atomic():
        found = pending(user, client_id, user_code)
        if found is None:
            raise NotWaiting()
        # The row's lock: a second click (or another tab) finds it decided.
        grant = (
            model.objects.select_for_update()
            .filter(pk=found.grant.pk, status=model.AUTHORIZATION_PENDING, user=user)
            .first()
        )
        if grant is None:
            raise NotWaiting()
        if not approve:
            grant.status = model.DENIED
            grant.save(update_fields=["status"])
            return found.client
        if cannot_approve(user, found.client) or not fresh_enough(request, found.client):
            raise NotFresh()
        authorization = flows.authorization_for(request, found.client)
        authorization.device_grant = grant
        authorization.save()
        grant.status = model.AUTHORIZED
        grant.save(update_fields=["status"])
        flows.signed_in_to_app(request, user, found.client)
    return found.client


# --- the device's polls (the token endpoint, through KeyfobValidator) --------------------


@dataclass(frozen=True)
class Poll:
    """What a poll gets: one of oauthlib's ``DeviceCodeGrant.DEVICE_CODE_*`` statuses, or
    None for a code that is unknown, of another client or already exchanged (invalid_grant);
    with "authorized", the grant and the sign-in record its tokens carry."""

    status: str | None
    grant: Any = None
    authorization: Authorization | None = None


def poll(client_id: str, device_code: object) -> Poll:
    """A poll of the token endpoint with ``device_code`` by the client ``client_id``.

    Too fast while pending (less than the grant's interval since the last poll, decided by
    one conditional UPDATE): slow_down, and the interval grows by 5 seconds. For
    "authorized", the code is spent here, by a conditional UPDATE: of two polls at once,
    one gets the tokens, and a replay gets invalid_grant."""
    model = get_device_grant_model()
    if not isinstance(device_code, str) or not device_code or len(device_code) > 100:
        return Poll(None)
    grant = model.objects.filter(device_code=device_code, client_id=client_id).first()
    if grant is None:
        return Poll(None)
    state, _ = DeviceState.objects.get_or_create(device_grant=grant)
    now = clock.now()
    if state.redeemed_at is not None:
        return Poll(None)
    if grant.status == model.DENIED:
        return Poll(DeviceCodeGrant.DEVICE_CODE_DENIED)
    if grant.status == model.EXPIRED or grant.expires <= now:
        model.objects.filter(pk=grant.pk).exclude(status=model.EXPIRED).update(status=model.EXPIRED)
        return Poll(DeviceCodeGrant.DEVICE_CODE_EXPIRED)
    if grant.status == model.AUTHORIZATION_PENDING:
        since = now - timedelta(seconds=grant.interval)
        on_time = DeviceState.objects.filter(
            Q(last_poll_at__isnull=True) | Q(last_poll_at__lte=since), pk=state.pk
        ).update(last_poll_at=now)
        if on_time:
            return Poll(DeviceCodeGrant.DEVICE_CODE_PENDING)
        DeviceState.objects.filter(pk=state.pk).update(last_poll_at=now)
        model.objects.filter(pk=grant.pk, interval__lt=MAX_INTERVAL).update(
            interval=F("interval") + 5
        )
        return Poll(DeviceCodeGrant.DEVICE_CODE_SLOW_DOWN)
    if grant.status != model.AUTHORIZED or grant.user_id is None:
        return Poll(None)
    authorization = Authorization.objects.filter(device_grant=grant).first()
    if authorization is None or authorization.ended_at is not None:
        # The session that approved ended before the device came for its tokens.
        return Poll(DeviceCodeGrant.DEVICE_CODE_DENIED)
    spent = DeviceState.objects.filter(pk=state.pk, redeemed_at__isnull=True).update(
        redeemed_at=now
    )
    if not spent:
        return Poll(None)
    return Poll(DeviceCodeGrant.DEVICE_CODE_AUTHORIZED, grant, authorization)
