"""Security keys and passkeys (WebAuthn): adding one, and checking one after the password,
at "Confirm it is you", and for a sign-in without the password.

The ceremonies' cryptography is the ``webauthn`` library's; what is Keyfob's is the state
around it. A challenge is a database row bound to the session that asked for it and to what
it is for, consumed once (DESIGN.md invariant 1) and good for a few minutes. The signature
counter is moved forward by compare-and-set; one that goes backwards means two copies of the
key exist, so the sign-in is refused and recorded. Every check runs under the account's one
code throttle (DESIGN.md invariant 2), with its authenticator apps and recovery codes; a
sign-in without the password, until the key's signature is proven, under the client
address's (anyone can name a key there). A new key's public key is checked (``cose``) before
it is stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.http.request import split_domain_port
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from keyfob.accounts import proofs
from keyfob.accounts.flows import require_recent_auth
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context, client_address, record
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock, throttle
from keyfob.core.consume import consume
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.cose import UnusableKey, check_public_key
from keyfob.twofactor.flows.setup import lock_account, turned_on_or_added
from keyfob.twofactor.flows.staff import needs_staff_invite, spend_staff_invite
from keyfob.twofactor.flows.verify import Event, Factor, NotEnrolled, throttled_attempt
from keyfob.twofactor.models import Purpose, SecurityKey, WebAuthnChallenge

T = TypeVar("T")
# The session holds, per purpose, only a random token whose digest finds the challenge row.
SESSION_KEY = "keyfob.webauthn"
_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)
# WebAuthn §7.1 (registration, step "credentialId"): longer ids are refused. Its base64url
# form (1364 characters) fits SecurityKey.credential_id.
MAX_CREDENTIAL_ID = 1023


class KeyRefused(InvalidCode):
    """The browser's answer does not prove the key: wrong origin or site, bad signature,
    an unknown key or another account's, or not a WebAuthn answer at all."""

    code = "key_refused"
    event = EventKind.KEY_WRONG


class KeyCloned(KeyRefused):
    """The key's signature counter did not move forward: a copy of it signed since (or
    this answer is a copy of one already taken)."""

    code = "key_cloned"
    event = EventKind.KEY_CLONE


class NotPasswordless(KeyRefused):
    """The key may not sign in without the password: it holds no account (not discoverable)
    or did not verify its user (PIN, fingerprint) when added or now."""

    code = "not_passwordless"


class ChallengeExpired(KeyfobError):
    """No live challenge for this session and purpose: it was used, it expired, or it was
    asked for in another session. The browser must start again."""

    code = "challenge_expired"


class WrongHost(KeyfobError):
    """The page is not under the relying party id: no key can be used here."""

    code = "wrong_host"


class TooManyKeys(KeyfobError):
    code = "too_many_keys"


def security_keys(user: User) -> list[SecurityKey]:
    return list(SecurityKey.objects.filter(user=user))


def only_keys_confirm(user: User) -> bool:
    """Whether only a security key may confirm it is this account's holder (sign-in
    freshness, "Confirm it is you"): staff with a key, under the staff rule. Else a phisher
    who relayed a staff member's password and code could add a key of their own, remove
    theirs or turn 2FA off, and then pass the rule."""
    return (
        app_settings.staff_phishing_resistant
        and user.is_staff
        and SecurityKey.objects.filter(user=user).exists()
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def expected_origin(request: HttpRequest) -> str:
    """The origin the browser must report: this page's, once its host (already checked
    against the allowed hosts) is the relying party id or a subdomain of it."""
    host = request.get_host()
    name, _port = split_domain_port(host)
    rp_id = app_settings.webauthn_rp_id
    if name != rp_id and not name.endswith("." + rp_id):
        raise WrongHost(f"{name} is not under {rp_id}")
    return f"{request.scheme}://{host}"


def keys_usable_here(request: HttpRequest) -> bool:
    """Whether this page's host can use security keys and passkeys at all (it is the relying
    party id or under it): where it is not (an IP address, say), no key page or button is
    offered, since every ceremony would fail."""
    try:
        expected_origin(request)
    except WrongHost:
        return False
    return True


def _user_handle(user: User) -> str:
    """The account's user handle: the one its keys already hold, or a new random one."""
    held = SecurityKey.objects.filter(user=user).exclude(user_handle="").first()
    return held.user_handle if held is not None else bytes_to_base64url(secrets.token_bytes(32))


def _descriptors(keys: list[SecurityKey]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(k.credential_id),
            transports=[AuthenticatorTransport(t) for t in k.transports if t in _TRANSPORTS],
        )
        for k in keys
    ]


def begin(request: HttpRequest, purpose: Purpose, user: User | None = None) -> dict[str, Any]:
    """Write a challenge for this session and ``purpose`` (replacing the session's earlier
    one for it); return the options for ``navigator.credentials.create()`` (REGISTER) or
    ``.get()`` as JSON-ready data.

    ``user`` is the account (None only for PASSWORDLESS, where the key says whose it is).
    Raises :class:`WrongHost`, :class:`TooManyKeys` (REGISTER), :class:`NotEnrolled` (an
    account without a key asked to use one), ``ReauthRequired`` (REGISTER without a recent
    confirmation), :class:`~keyfob.otp.Throttled` (PASSWORDLESS: the address asked for too
    many).
    """
    assert (user is None) == (purpose == Purpose.PASSWORDLESS)
    expected_origin(request)  # refuses a host outside the relying party id
    rp_id = app_settings.webauthn_rp_id
    keys = security_keys(user) if user is not None else []
    challenge = secrets.token_bytes(32)
    handle = ""
    options: Any
    if purpose == Purpose.REGISTER:
        assert user is not None
        require_recent_auth(request)
        if len(keys) >= app_settings.max_security_keys:
            raise TooManyKeys(f"at most {app_settings.max_security_keys} security keys")
        handle = _user_handle(user)
        options = generate_registration_options(
            rp_id=rp_id,
            rp_name=app_settings.issuer,
            user_id=base64url_to_bytes(handle),
            user_name=user.email,
            user_display_name=user.display_name or user.email,
            challenge=challenge,
            timeout=app_settings.webauthn_challenge_seconds * 1000,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=_descriptors(keys),
        )
    else:
        if user is not None and not keys:
            raise NotEnrolled("no security key")
        options = generate_authentication_options(
            rp_id=rp_id,
            challenge=challenge,
            timeout=app_settings.webauthn_challenge_seconds * 1000,
            allow_credentials=_descriptors(keys),
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if purpose == Purpose.PASSWORDLESS
                else UserVerificationRequirement.PREFERRED
            ),
        )
    token = secrets.token_urlsafe(32)
    tokens = dict(request.session.get(SESSION_KEY) or {})
    now = clock.now()
    with transaction.atomic():
        # The session's earlier challenge for this purpose, and any expired one, go.
        stale = Q(expires_at__lt=now)
        if isinstance(tokens.get(purpose), str):
            stale |= Q(binding=_digest(tokens[purpose]))
        WebAuthnChallenge.objects.filter(stale).delete()
        address = client_address(request) if purpose == Purpose.PASSWORDLESS else None
        network = network_of(address) if address is not None else ""
        if address is not None:
            _refuse_a_flood(address, network, now)
        WebAuthnChallenge.objects.create(
            purpose=purpose,
            user=user,
            binding=_digest(token),
            challenge=challenge,
            user_handle=handle,
            address=address,
            network=network,
            created_at=now,
            expires_at=now + timedelta(seconds=app_settings.webauthn_challenge_seconds),
        )
    tokens[purpose] = token
    request.session[SESSION_KEY] = tokens
    data: dict[str, Any] = json.loads(options_to_json(options))
    if purpose == Purpose.REGISTER:
        # Ask the browser whether the key stored the account (a passkey); without the
        # answer the key is never offered for a sign-in without the password.
        data["extensions"] = {"credProps": True}
    return data


# Passwordless challenges one address, and one network, may hold at once. Anyone may ask
# for one (the sign-in page does as it loads), and each is a row; a browser's own earlier one
# is replaced, so only a client that drops its session cookie reaches these. The network is
# what one subscriber is given: an IPv6 /64 (2^64 addresses, so a cap per address alone
# bounds nothing), and for IPv4 a /24, so one address's 30 cannot be multiplied by a
# neighbourhood's 256 either; four addresses' worth leaves room for an office's people.
MAX_CHALLENGES_PER_ADDRESS = 30
MAX_CHALLENGES_PER_NETWORK = 4 * MAX_CHALLENGES_PER_ADDRESS
IPV4_PREFIX = 24
IPV6_PREFIX = 64
# The row whose lock makes one network's requests for a challenge count and insert one after
# another (else each counts the same rows and all insert: 31 of 30 were made). A throttle row
# of its own scope, locked by ``throttle.acquire``; its counters are not used.
_NETWORK_LOCK = throttle.Policy(
    "passkey_network", free=0, base=timedelta(0), cap=timedelta(0), daily=0
)


def network_of(address: str) -> str:
    """The network ``address`` belongs to for the cap, as CIDR text ("2001:db8:1:2::/64",
    "192.0.2.0/24")."""
    ip = ipaddress.ip_address(address)
    prefix = IPV4_PREFIX if ip.version == 4 else IPV6_PREFIX
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip, prefix = ip.ipv4_mapped, IPV4_PREFIX
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _refuse_a_flood(address: str, network: str, now: datetime) -> None:
    """Raise :class:`Throttled` when ``address``, or its ``network``, holds the most live
    passwordless challenges it may, until the oldest expires. Holds the network's lock until
    the caller's transaction ends, so its insert is counted by the next request."""
    throttle.acquire(_NETWORK_LOCK, network)
    live = WebAuthnChallenge.objects.filter(
        purpose=Purpose.PASSWORDLESS, expires_at__gt=now
    ).order_by("expires_at")
    for rows, cap in (
        (live.filter(address=address), MAX_CHALLENGES_PER_ADDRESS),
        (live.filter(network=network), MAX_CHALLENGES_PER_NETWORK),
    ):
        expiries = list(rows.values_list("expires_at", flat=True)[:cap])
        if len(expiries) >= cap:
            raise Throttled((expiries[0] - now).total_seconds(), "too many passkey challenges")


def _live_challenge(request: HttpRequest, purpose: Purpose, user: User | None) -> WebAuthnChallenge:
    """This session's live challenge for ``purpose`` (and ``user``). Raises
    :class:`ChallengeExpired`. Read only: :func:`_spend` uses it, once the answer is proven
    (a wrong answer leaves it for the right one, under the account's throttle)."""
    tokens = request.session.get(SESSION_KEY)
    token = tokens.get(purpose) if isinstance(tokens, dict) else None
    if not isinstance(token, str):
        raise ChallengeExpired("no challenge in this session")
    row = WebAuthnChallenge.objects.filter(
        binding=_digest(token),
        purpose=purpose,
        user=user,
        used_at__isnull=True,
        expires_at__gt=clock.now(),
    ).first()
    if row is None:
        raise ChallengeExpired("challenge used, expired or another session's")
    return row


def _spend(request: HttpRequest, row: WebAuthnChallenge) -> None:
    """Use the challenge up (one conditional UPDATE: of two answers at once, one wins) and
    forget it in the session. Raises :class:`ChallengeExpired` when it was used or expired
    meanwhile."""
    now = clock.now()
    live = WebAuthnChallenge.objects.filter(pk=row.pk, used_at__isnull=True, expires_at__gt=now)
    if not consume(live, used_at=now):
        raise ChallengeExpired("challenge used meanwhile")
    tokens = request.session.get(SESSION_KEY)
    if isinstance(tokens, dict):
        request.session[SESSION_KEY] = {k: v for k, v in tokens.items() if k != row.purpose}


# What the library raises on an answer it cannot read: its own errors, and Python's for a
# structure of the wrong shape (a COSE key sent as a CBOR array reads as a list: IndexError).
_UNREADABLE = (WebAuthnException, ValueError, TypeError, KeyError, IndexError, AttributeError)


def _parse(response: str) -> dict[str, Any]:
    """The browser's credential as a JSON object, or :class:`KeyRefused`."""
    try:
        data = json.loads(response)
    except (ValueError, RecursionError):  # nested past the recursion limit: not an answer
        raise KeyRefused("not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("rawId"), str):
        raise KeyRefused("not a WebAuthn credential")
    return data


def _part(data: dict[str, Any], name: str) -> dict[str, Any]:
    """``data[name]`` when it is a JSON object, else an empty one (junk changes nothing)."""
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _raw_id(data: dict[str, Any]) -> str:
    """The credential id, in the base64url form it is stored in."""
    try:
        return bytes_to_base64url(base64url_to_bytes(data["rawId"]))
    except (ValueError, TypeError):
        raise KeyRefused("bad credential id") from None


def register_key(
    request: HttpRequest,
    user: User,
    response: str,
    name: str,
    context: Context,
    *,
    invite: str = "",
) -> list[str]:
    """Check the browser's answer to this session's registration challenge and add the key.

    Returns the new recovery codes when it is the account's first authenticator (2FA is
    turned on), else an empty list. Raises :class:`ChallengeExpired`, :class:`KeyRefused`,
    :class:`WrongHost`, :class:`TooManyKeys`, and ``ReauthRequired`` without a recent
    password (and second factor, with 2FA on): adding a key is a sensitive change, whatever
    guard the page has (DESIGN.md invariant 7). A staff member's first key needs the
    enrolment code an operator issued (``invite``), used up with it; else
    :class:`~keyfob.twofactor.flows.staff.StaffInviteRequired`. That first key proves the
    staff rule for this session (a key proof, as a confirmation with it would).
    """
    require_recent_auth(request)
    origin = expected_origin(request)
    data = _parse(response)
    row = _live_challenge(request, Purpose.REGISTER, user)
    try:
        verified = verify_registration_response(
            credential=data,
            expected_challenge=bytes(row.challenge),
            expected_rp_id=app_settings.webauthn_rp_id,
            expected_origin=origin,
        )
    except _UNREADABLE as exc:
        raise KeyRefused("registration not proven") from exc
    if len(verified.credential_id) > MAX_CREDENTIAL_ID:
        raise KeyRefused("credential id longer than WebAuthn allows")
    try:
        # The library stores what it was given; a key that cannot verify a signature would
        # turn 2FA on with a key that can never be used.
        check_public_key(verified.credential_public_key)
    except UnusableKey as exc:
        raise KeyRefused(f"unusable public key: {exc}") from None
    transports = _part(data, "response").get("transports")
    cred_props = _part(data, "clientExtensionResults").get("credProps")
    key = SecurityKey(
        user=user,
        name=name,
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=sorted(
            {t for t in transports if isinstance(t, str) and t in _TRANSPORTS}
            if isinstance(transports, list)
            else ()
        ),
        aaguid=verified.aaguid,
        backup_eligible=verified.credential_device_type == "multi_device",
        backed_up=verified.credential_backed_up,
        user_verified=verified.user_verified,
        discoverable=isinstance(cred_props, dict) and cred_props.get("rk") is True,
        user_handle=row.user_handle,
    )
    with transaction.atomic():
        lock_account(user)
        if SecurityKey.objects.filter(user=user).count() >= app_settings.max_security_keys:
            raise TooManyKeys(f"at most {app_settings.max_security_keys} security keys")
        enrolled = needs_staff_invite(user)  # read under the account's lock: one first key
        if enrolled:
            spend_staff_invite(user, invite)
        _spend(request, row)
        try:
            with transaction.atomic():
                key.save()
        except IntegrityError:  # the same credential registered already
            raise KeyRefused("credential already registered") from None
        codes = turned_on_or_added(
            user,
            context,
            name=key.label,
            method="security_key",
            added=(EventKind.KEY_ADDED, NoticeKind.KEY_ADDED),
            synced=key.backup_eligible,
        )
        if enrolled:
            # A staff member's first key, with the operator's enrolment code: this session
            # holds the key (its answer came from a ceremony on this site's origin, which
            # a phishing page cannot stage), as much as a "Confirm it is you" with it just
            # after would show. It proves the staff rule here, so the desk opens without
            # asking for the key a second time.
            proofs.add(
                request,
                [
                    proofs.Made(
                        proofs.Factor.SECURITY_KEY,
                        proofs.KEY,
                        key.pk,
                        key.label,
                        user_verified=verified.user_verified,
                    )
                ],
            )
        return codes


def _use_counter(key: SecurityKey, new_count: int, backed_up: bool, discovered: bool) -> bool:
    """Move the key's counter to ``new_count`` by compare-and-set (a key that keeps no
    counter reports 0 each time); return whether this call did. ``discovered``: the key
    answered without being named, so it holds the account."""
    condition = Q(sign_count=0) if new_count == 0 else Q(sign_count__lt=new_count)
    changes: dict[str, Any] = {"sign_count": new_count, "backed_up": backed_up}
    if discovered:
        changes["discoverable"] = True
    return consume(
        SecurityKey.objects.filter(condition, pk=key.pk), last_used_at=clock.now(), **changes
    )


def verify_key(
    request: HttpRequest,
    purpose: Purpose,
    response: str,
    context: Context,
    user: User | None = None,
    event: Event | None = None,
) -> SecurityKey:
    """Check the browser's answer to this session's challenge for ``purpose``; return the
    key that signed it (its ``user`` is the account, which PASSWORDLESS learns here).

    ``user`` is the account signing in or confirming it is them (None for PASSWORDLESS);
    ``event`` is recorded with the success, naming the key. Raises :class:`ChallengeExpired`,
    :class:`KeyRefused` (and :class:`NotPasswordless`, :class:`KeyCloned`),
    :class:`CodeReused` (a concurrent answer used the same counter),
    :class:`~keyfob.otp.Throttled`, :class:`WrongHost`.

    After the password (SIGNIN, REAUTH) every refusal counts on the account's one throttle.
    Without it (PASSWORDLESS) anyone who knows a key's credential id can send answers naming
    it: until the signature is proven a refusal counts on the client's address, not on the
    account (else they could lock its codes on the web, SSH and the API, and the change of
    text would confirm the id); the account's throttle applies once the key has signed.
    """
    origin = expected_origin(request)
    data = _parse(response)
    credential_id = _raw_id(data)
    row = _live_challenge(request, purpose, user)
    owner = user
    keys = SecurityKey.objects.select_related("user").filter(credential_id=credential_id)
    if user is not None:
        keys = keys.filter(user=user)
    key = keys.first()
    if key is not None:
        owner = key.user
    passwordless = purpose == Purpose.PASSWORDLESS
    if event is not None and key is not None:
        event = (event[0], {**event[1], "authenticator": key.label})

    def prove() -> Any:
        """The key's signature over this challenge, checked (no write); else KeyRefused."""
        if key is None:
            # Another account's key, or none: nothing says which.
            raise KeyRefused("not a key of this account")
        # Only a key that verified its user when added signs in alone. That it holds the
        # account needs no flag: it answered a request that named no key.
        if passwordless and not key.user_verified:
            raise NotPasswordless("this key needs the password first")
        if passwordless and not key.user.is_active:
            # The password step refuses a deactivated account; a passkey must too (Django's
            # login() does not look).
            raise KeyRefused("account deactivated")
        handle = _part(data, "response").get("userHandle")
        if passwordless and (not isinstance(handle, str) or handle != key.user_handle):
            raise KeyRefused("user handle does not match the key's account")
        try:
            return verify_authentication_response(
                credential=data,
                expected_challenge=bytes(row.challenge),
                expected_rp_id=app_settings.webauthn_rp_id,
                expected_origin=origin,
                credential_public_key=bytes(key.public_key),
                # The counter is compared below, where a step back is named a clone.
                credential_current_sign_count=0,
                require_user_verification=passwordless,
            )
        except _UNREADABLE as exc:
            raise KeyRefused("assertion not proven") from exc

    def use(verified: Any) -> SecurityKey:
        assert key is not None
        # The challenge is spent before the counter decides: the same answer posted again
        # at once (a double click, a retrying proxy) loses here, as a used challenge, and is
        # not taken for a copy of the key by the counter its twin has just moved.
        _spend(request, row)
        new_count = verified.new_sign_count
        if (new_count or key.sign_count) and new_count <= key.sign_count:
            notices.queue(key.user, NoticeKind.KEY_CLONE, context, name=key.label)
            # A key that may have been copied proves nothing any more, in any session.
            proofs.authenticator_gone(key.user, proofs.KEY, key.pk)
            raise KeyCloned(f"counter {new_count} after {key.sign_count}")
        if not _use_counter(key, new_count, verified.credential_backed_up, passwordless):
            raise CodeReused("this signature counter was just used")
        key.verified_user_now = verified.user_verified
        return key

    failure_detail = {"authenticator": key.label} if key is not None else {}
    if passwordless:
        verified = _proven_from_address(context, owner, prove, failure_detail)
        assert owner is not None
        return throttled_attempt(
            owner, context, Factor.KEY, lambda: use(verified), event, failure_detail=failure_detail
        )
    assert owner is not None
    return throttled_attempt(
        owner, context, Factor.KEY, lambda: use(prove()), event, failure_detail=failure_detail
    )


def _proven_from_address(
    context: Context, owner: User | None, prove: Callable[[], T], failure_detail: dict[str, Any]
) -> T:
    """Run ``prove`` under the client address's throttle (the one the password step counts
    on too); count it there if it raises :class:`KeyRefused`, and record the refusal in the
    activity of the account whose key was named, if any (an event, not a count). Raises
    :class:`~keyfob.otp.Throttled` while the address waits, for every key alike."""
    failure: KeyfobError
    with transaction.atomic(savepoint=False):
        row = throttle.acquire(throttle.ADDRESS, context.address or "unknown")
        # Refusals are raised after the block, as in throttled_attempt: the failure is
        # committed with it, and no savepoint is needed.
        try:
            throttle.check(throttle.ADDRESS, row)
            return prove()
        except Throttled as exc:
            failure = exc
        except KeyRefused as exc:
            throttle.record_failure(throttle.ADDRESS, row)
            if owner is not None:
                record(owner, exc.event, context, **failure_detail)
            failure = exc
    raise failure
