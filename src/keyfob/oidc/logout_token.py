"""OpenID Connect Back-Channel Logout 1.0, the protocol part: the session id (``sid``) an
ID token carries and the logout token (section 2.4) an app receives when that session ends.

No database, no HTTP: queuing, delivering and recording are ``backchannel.py``'s.
https://openid.net/specs/openid-connect-backchannel-1_0.html
"""

from __future__ import annotations

import secrets

from django.utils.crypto import salted_hmac
from jwcrypto import jwk, jwt

EVENT = "http://schemas.openid.net/event/backchannel-logout"
TYPE = "logout+jwt"  # section 2.4: explicit typing, so it is never taken for an ID token
ALGORITHM = "RS256"
# Section 2.4 recommends a short life: the token is built at each delivery attempt.
LIFETIME_SECONDS = 120
_SID_SALT = "keyfob.oidc.sid"


def sid_for(signin_pk: int) -> str:
    """The ``sid`` of a sign-in record: the same for every app that sign-in let in, and
    revealing neither its session key nor (without SECRET_KEY) which record it is."""
    return salted_hmac(_SID_SALT, str(signin_pk), algorithm="sha256").hexdigest()[:32]


def claims(
    *, issuer: str, audience: str, subject: str, sid: str, now: float, jti: str | None = None
) -> dict[str, object]:
    """The logout token's claims (section 2.4): never a ``nonce``. Raises ValueError when
    there is neither a subject nor a session to name."""
    if not subject and not sid:
        raise ValueError("a logout token names a subject, a session or both")
    iat = int(now)
    out: dict[str, object] = {
        "iss": issuer,
        "aud": audience,
        "iat": iat,
        "exp": iat + LIFETIME_SECONDS,
        "jti": jti or secrets.token_urlsafe(18),
        "events": {EVENT: {}},
    }
    if subject:
        out["sub"] = subject
    if sid:
        out["sid"] = sid
    return out


def sign(payload: dict[str, object], key: jwk.JWK, kid: str) -> str:
    """The compact JWS of ``payload``, signed by ``key`` with its ``kid`` and ``typ`` header."""
    token = jwt.JWT(header={"alg": ALGORITHM, "typ": TYPE, "kid": kid}, claims=payload)
    token.make_signed_token(key)
    return str(token.serialize())
