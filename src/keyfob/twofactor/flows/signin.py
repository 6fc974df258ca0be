"""Completing a sign-in and a "Confirm it is you": one place decides the pending marker, the
trusted browser, the proofs the session holds (DESIGN.md invariant 8) and the event.

The pages check each factor (``verify_code``, ``verify_key``, ``use_recovery_code``) and
hand over what was proven; the functions here turn it into the session's state. The staff
rule and the second-factor rule of a recent authentication are here too: both read the
session's proofs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from django.http import HttpRequest

from keyfob.accounts import flows as account_flows
from keyfob.accounts import proofs
from keyfob.accounts.models import Factor, User
from keyfob.audit.events import Context
from keyfob.twofactor.flows.browsers import trust_browser, use_trusted_browser
from keyfob.twofactor.flows.verify import has_2fa
from keyfob.twofactor.flows.webauthn import only_keys_confirm
from keyfob.twofactor.models import Authenticator, SecurityKey


class After(StrEnum):
    """Where the password step leads."""

    SIGNED_IN = "signed_in"  # no 2FA: the password was all
    TRUSTED = "trusted"  # a trusted browser skipped the code step
    CODE_STEP = "code_step"  # a pending marker; the second factor comes next


@dataclass(frozen=True)
class PasswordStep:
    after: After
    # TRUSTED: the trusted browser's new token, for its cookie (the old one is spent).
    trust_token: str | None = None


def app_proof(auth: Authenticator) -> proofs.Made:
    return proofs.Made(Factor.APP_CODE, proofs.APP, auth.pk, auth.label)


def key_proof(key: SecurityKey, *, passkey: bool = False) -> proofs.Made:
    return proofs.Made(
        Factor.PASSKEY if passkey else Factor.SECURITY_KEY,
        proofs.KEY,
        key.pk,
        key.label,
        user_verified=passkey or key.verified_user_now,
    )


RECOVERY_PROOF = proofs.Made(Factor.RECOVERY)


def _detail(made: proofs.Made) -> dict[str, str]:
    """What the sign-in's event says of the second factor."""
    detail = {"second_factor": str(made.factor)}
    if made.name:
        detail["authenticator"] = made.name
    return detail


def after_password(
    request: HttpRequest, user: User, next_url: str, trusted_token: str
) -> PasswordStep:
    """The password of ``user`` was right: sign in (no 2FA), sign in through the trusted
    browser whose cookie holds ``trusted_token``, or leave only a pending marker for the
    code step (DESIGN.md invariant 6)."""
    if not has_2fa(user):
        account_flows.complete_signin(request, user, [proofs.PASSWORD], second_factor="none")
        return PasswordStep(After.SIGNED_IN)
    new_token = use_trusted_browser(user, trusted_token, Context.from_request(request))
    if new_token is None:
        account_flows.begin_pending(request, user, next_url)
        return PasswordStep(After.CODE_STEP)
    account_flows.complete_signin(
        request,
        user,
        [proofs.PASSWORD, proofs.Made(Factor.TRUSTED_BROWSER)],
        second_factor="trusted",
    )
    return PasswordStep(After.TRUSTED, new_token)


def after_second_factor(
    request: HttpRequest, user: User, made: proofs.Made, *, trust: bool
) -> str | None:
    """The code step proved ``made`` after the password: the full session. Returns a new
    trusted browser's token when ``trust`` was asked for (for its cookie), else None."""
    account_flows.complete_signin(request, user, [proofs.PASSWORD, made], **_detail(made))
    if trust:
        return trust_browser(user, Context.from_request(request))
    return None


def after_passkey(request: HttpRequest, key: SecurityKey) -> None:
    """A passkey signed in alone (discoverable, its user verified): both factors."""
    made = key_proof(key, passkey=True)
    account_flows.complete_signin(request, key.user, [made], **_detail(made))


def after_confirmation(request: HttpRequest, made: proofs.Made | None) -> None:
    """ "Confirm it is you" proved the password and ``made`` (None: the account has no
    second factor) just now."""
    account_flows.mark_recent_auth(
        request, [proofs.PASSWORD] if made is None else [proofs.PASSWORD, made]
    )


def phishing_resistant(request: HttpRequest) -> bool:
    """Whether this session holds a live proof made with a security key or passkey (at
    sign-in or at "Confirm it is you"): what the staff rule asks. The proof dies with the
    key (removed, or flagged as a possible copy) and with 2FA."""
    return proofs.satisfies(request, proofs.KEYS)


def second_factor_rule(user: User) -> frozenset[str] | None:
    """The second factors a recent authentication of ``user`` needs (accounts' proofs ask):
    none without 2FA; staff with a key under the staff rule, a key (a relayed code grants
    them no freshness); else any second factor (a trusted browser is none)."""
    if only_keys_confirm(user):
        return proofs.KEYS
    if has_2fa(user):
        return proofs.SECOND_FACTORS
    return None
