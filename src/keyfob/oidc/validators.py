"""django-oauth-toolkit's validator, through its own extension points (STYLE.md): the
claims come from the sign-in record (invariant 8), ID tokens are signed with Keyfob's
key, and a refresh never outlives the session it came from nor grants more than that
session's live proofs still allow (invariant 10)."""

from __future__ import annotations

from typing import Any

from jwcrypto import jws
from jwcrypto.common import JWException
from oauth2_provider.models import (
    get_device_grant_model,
    get_grant_model,
    get_refresh_token_model,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc8628.grant_types import DeviceCodeGrant

from keyfob.oidc import claims, device, flows, keys
from keyfob.oidc.models import Authorization, Client

_KEY = "keyfob_authorization"


def _authorization(request: Any) -> Authorization | None:
    """The sign-in record behind this token request: from the code (validate_code), the
    refresh token (validate_refresh_token) or the device code, looked up once."""
    found = getattr(request, _KEY, None)
    if found is not None:
        return found
    device_code = (getattr(request, "_params", None) or {}).get("device_code")
    if getattr(request, "grant_type", None) == Client.GRANT_DEVICE_CODE and device_code:
        device = get_device_grant_model().objects.filter(device_code=device_code).first()
        if device is not None:
            found = Authorization.objects.filter(device_grant=device).first()
            setattr(request, _KEY, found)
    return found


class KeyfobValidator(OAuth2Validator):
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "email_verified": "email",
        "amr": "openid",
        "acr": "openid",
        flows.GRANTS_CLAIM: flows.GRANTS_SCOPE,
    }

    # --- the sign-in record through the grant ------------------------------------------

    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        grant = self._create_authorization_code(request, code)
        pending: Authorization | None = getattr(request, _KEY, None)
        if pending is None:  # only Keyfob's own authorization view makes codes
            raise RuntimeError("an authorization code without its sign-in record")
        pending.grant = grant
        pending.save()

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        if not super().validate_code(client_id, code, client, request, *args, **kwargs):
            return False
        # Single use under concurrency (invariant 1): the library reads the grant, makes
        # the tokens, then deletes it, so requests sent at once all got tokens. The token
        # request is one transaction (views.TokenView): the grant's lock makes the others
        # wait, and they find it gone.
        grants = get_grant_model().objects.select_for_update()
        if not grants.filter(code=code, application=client).exists():
            return False
        found = Authorization.objects.filter(grant__code=code, client=client).first()
        if found is None or found.ended_at is not None:
            return False
        setattr(request, _KEY, found)
        return True

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        token = request.refresh_token_instance
        # Rotated once under concurrency: the lock makes a concurrent use of the same
        # token wait, and then find it revoked, which is the reuse the library answers by
        # revoking the family (as it does for a reuse one after the other).
        live = (
            get_refresh_token_model()
            .objects.select_for_update()
            .filter(pk=token.pk, revoked__isnull=True)
            .exists()
        )
        if not live:
            if oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION and token.token_family:
                get_refresh_token_model().revoke_family(token.token_family)
            return False
        found = Authorization.objects.filter(
            token_family=token.token_family, client=client, ended_at__isnull=True
        ).first()
        if found is None:
            return False
        # A refresh says how the session stands now: a key removed since takes its proof
        # (and "phr") away, and an app that needs a key gets nothing without one.
        now = flows.signin_strength(found.signin)
        if now is not None:
            found.amr, found.acr = now.amr, now.acr
        if client.require_phishing_resistant and found.acr != claims.PHR:
            return False
        setattr(request, _KEY, found)
        return True

    def _create_refresh_token(
        self, request, refresh_token_code, access_token, previous_refresh_token
    ):
        token = super()._create_refresh_token(
            request, refresh_token_code, access_token, previous_refresh_token
        )
        found = _authorization(request)
        if found is not None and found.token_family != token.token_family:
            Authorization.objects.filter(pk=found.pk).update(token_family=token.token_family)
            found.token_family = token.token_family
        return token

    def validate_device_code(self, client_id, code, request, *args, **kwargs):
        """A device polling the token endpoint (RFC 8628 section 3.5): oauthlib maps the
        status to authorization_pending, slow_down, access_denied, expired_token or
        invalid_grant. Approved: the token carries the person, the scopes and the sign-in
        record of the approval (``device.poll`` spends the code)."""
        polled = device.poll(client_id, code)
        if polled.status == DeviceCodeGrant.DEVICE_CODE_AUTHORIZED:
            request.user = polled.grant.user
            request.scopes = polled.grant.scope.split()
            setattr(request, _KEY, polled.authorization)
        return polled.status

    # --- claims --------------------------------------------------------------------------

    def get_additional_claims(self, request):
        user = request.user
        found = _authorization(request)
        out: dict[str, Any] = {
            "email": user.email,
            "email_verified": True,  # the sign-in address was confirmed by a code
            # The profile's name only: never the address standing in for a missing one.
            "name": getattr(user, "display_name", ""),
        }
        if not out["name"]:
            del out["name"]
        if found is not None:
            out["amr"] = list(found.amr)
            out["acr"] = found.acr
        # Worked out only when the "grants" scope asks for it (the library calls it then).
        out[flows.GRANTS_CLAIM] = lambda request: flows.grants_claim(found, user)
        return out

    def get_discovery_claims(self, request):
        return [
            "sub",
            "email",
            "email_verified",
            "name",
            "auth_time",
            "amr",
            "acr",
            flows.GRANTS_CLAIM,
        ]

    def get_id_token_dictionary(self, token, token_handler, request):
        data, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        found = _authorization(request)
        if found is not None:
            data["auth_time"] = int(found.auth_time.timestamp())
            if found.sid:  # Back-Channel Logout 1.0 section 2.1: names Keyfob's session
                data["sid"] = found.sid
            if data.get("iss") and found.issuer != data["iss"]:
                # The logout token, made later without a request, must say the same.
                Authorization.objects.filter(pk=found.pk).update(issuer=data["iss"])
                found.issuer = data["iss"]
        return data, expiration_time

    def get_userinfo_claims(self, request):
        found = flows.authorization_of_token(request.access_token)
        if found is not None:
            setattr(request, _KEY, found)
        return super().get_userinfo_claims(request)

    # --- prompt=none: Keyfob's authorization view answers before these are asked ------

    def validate_silent_login(self, request):
        return True

    def validate_silent_authorization(self, request):
        return True

    # --- keys ------------------------------------------------------------------------------

    def _get_key_for_token(self, token):
        """The published key named by the token's ``kid`` header (current or retired)."""
        try:
            unverified = jws.JWS()
            unverified.deserialize(token)
            header = unverified.jose_header
        except (JWException, ValueError, TypeError):
            return None
        kid = header.get("kid") if isinstance(header, dict) else None
        if not isinstance(kid, str):
            return None
        key = keys.by_kid(kid)
        return key.jwk if key is not None else None
