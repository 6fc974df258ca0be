"""How strongly a session signed in, in OpenID Connect's words (DESIGN.md invariant 8).

From the live proofs of a sign-in record this module derives, and nothing else:

- ``amr`` (RFC 8176): ``pwd`` for the password; ``otp`` for an authenticator app's code or
  a recovery code; ``hwk`` for a security key used as the second factor, ``swk`` for a
  passkey (Keyfob cannot tell whether a passkey's private key left the device it was made
  on, so it claims no hardware); ``user`` when the key verified its user (PIN, biometrics);
  ``mfa`` when a knowledge factor and a possession factor both proved the session.
- ``acr``: :data:`PHR` ("phishing-resistant", OpenID EAP) when a security key or passkey
  proved the session; :data:`MFA` for the password and a code; :data:`PWD` for the password
  alone. A trusted browser skips the code at sign-in and proves nothing here.
- ``auth_time``: the latest of those proofs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from keyfob.accounts.models import Factor, Proof

PHR = "phr"
MFA = "mfa"
PWD = "pwd"  # noqa: S105 (an acr value, not a password)
# From the weakest to the strongest: what a relying party's acr_values may ask for.
LEVELS = (PWD, MFA, PHR)

_AMR = {
    Factor.PASSWORD: "pwd",
    Factor.APP_CODE: "otp",
    Factor.RECOVERY: "otp",
    Factor.SECURITY_KEY: "hwk",
    Factor.PASSKEY: "swk",
}
_KNOWLEDGE = {Factor.PASSWORD, Factor.PASSKEY}
_POSSESSION = {Factor.APP_CODE, Factor.RECOVERY, Factor.SECURITY_KEY, Factor.PASSKEY}
_KEYS = {Factor.SECURITY_KEY, Factor.PASSKEY}


@dataclass(frozen=True)
class Strength:
    amr: list[str]
    acr: str
    auth_time: datetime | None

    def meets(self, wanted: str) -> bool:
        """Whether this strength is at least the level ``wanted`` (one of :data:`LEVELS`)."""
        return LEVELS.index(self.acr) >= LEVELS.index(wanted)


def strength(proofs: Iterable[Proof]) -> Strength:
    """The strength the live ``proofs`` of one sign-in give (revoked ones are ignored)."""
    live = [p for p in proofs if p.revoked_at is None and p.factor in _AMR]
    factors = {p.factor for p in live}
    amr = sorted({_AMR[Factor(f)] for f in factors})
    if any(p.user_verified and p.factor in _KEYS for p in live):
        amr.append("user")
    # A passkey alone is both: the key, and the user it verified standing for the password.
    passkey_alone = any(p.factor == Factor.PASSKEY and p.user_verified for p in live)
    multi = passkey_alone or (bool(factors & _KNOWLEDGE) and bool(factors & _POSSESSION))
    if multi:
        amr.append("mfa")
    if not factors & _KNOWLEDGE:
        acr = ""  # nothing that stands for the password: not signed in, for an app
    elif factors & _KEYS and multi:
        acr = PHR
    elif multi:
        acr = MFA
    else:
        acr = PWD
    auth_time = max((p.at for p in live), default=None)
    return Strength(amr=amr, acr=acr, auth_time=auth_time)


def wanted_level(acr_values: str | None, claims: object, client_requires_key: bool) -> str:
    """The level an authorization request needs: the client's own rule, ``acr_values``
    (space-separated, the first known value counts) and an essential ``acr`` claim of the
    ``claims`` parameter (OpenID Connect Core 5.5.1.1). Unknown values ask for nothing."""
    wanted = [PHR] if client_requires_key else []
    for value in (acr_values or "").split():
        if value in LEVELS:
            wanted.append(value)
            break
    if isinstance(claims, dict):
        for part in ("id_token", "userinfo"):
            section = claims.get(part)
            acr = section.get("acr") if isinstance(section, dict) else None
            if isinstance(acr, dict) and acr.get("essential"):
                values = acr.get("values") or ([acr["value"]] if "value" in acr else [])
                known = [v for v in values if isinstance(v, str) and v in LEVELS]
                if known:
                    wanted.append(min(known, key=LEVELS.index))
    return max(wanted, key=LEVELS.index, default=PWD)
