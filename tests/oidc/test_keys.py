"""The ID-token signing key (issue 25): made by Keyfob on first use, kept as a key-ring
ciphertext, rotated by ``keyfob rotate-keys --signing-key`` with the old public key still
published until the tokens it signed have expired."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client as Browser
from jwcrypto import jwk, jws, jwt

from keyfob.core import clock, keyring
from keyfob.oidc import keys
from keyfob.oidc.models import SigningKey
from tests.conftest import make_user
from tests.oidc.helpers import REDIRECT, signed_in, tokens_for


def id_token(app: tuple[Any, str], user: Any) -> str:
    client, secret = app
    return str(tokens_for(signed_in(user.email), client.client_id, secret)["id_token"])


def kid_of(token_text: str) -> str:
    signed = jws.JWS()
    signed.deserialize(token_text)
    return str(signed.jose_header["kid"])


def verifies(token_text: str) -> bool:
    published = jwk.JWKSet.from_json(Browser().get("/oidc/jwks/").content)
    try:
        jwt.JWT(jwt=token_text, key=published, check_claims={})
    except Exception:
        return False
    return True


def test_the_key_is_made_once_and_kept_encrypted(db: None) -> None:
    first = keys.current()
    assert keys.current().kid == first.kid
    row = SigningKey.objects.get()
    assert "PRIVATE KEY" not in row.private_key and row.private_key.startswith("v1.")
    pem = keyring.decrypt(row.private_key, context=f"oidc-signing-key:{row.kid}")
    assert b"PRIVATE KEY" in pem
    published = json.loads(Browser().get("/oidc/jwks/").content)["keys"]
    assert [k["kid"] for k in published] == [first.kid]
    assert all("d" not in k for k in published)  # the public half only


def test_rotation_keeps_old_tokens_verifiable_until_they_expire(
    app: tuple[Any, str], settings: Any
) -> None:
    user = make_user("rota@example.com")
    old_token = id_token(app, user)
    old_kid = kid_of(old_token)
    out = io.StringIO()
    call_command("rotate-keys", "--signing-key", stdout=out)
    assert "ID tokens are now signed with key" in out.getvalue()
    new_token = id_token(app, user)
    assert kid_of(new_token) != old_kid
    # Both verify: the retired key is still published.
    assert verifies(old_token) and verifies(new_token)
    kids = [k["kid"] for k in json.loads(Browser().get("/oidc/jwks/").content)["keys"]]
    assert old_kid in kids and kid_of(new_token) in kids
    # Once every token it could have signed has expired, it is no longer published.
    later = clock.time() + settings.KEYFOB_OIDC_ACCESS_TOKEN_SECONDS + 5
    with clock.frozen(later):
        kids = [k["kid"] for k in keys.jwks()["keys"]]
    assert old_kid not in kids and kid_of(new_token) in kids
    assert SigningKey.objects.filter(kid=old_kid, retired_at__isnull=False).exists()


@pytest.fixture
def app(db: None) -> tuple[Any, str]:
    from keyfob.oidc import flows

    return flows.create_client("Panel", [REDIRECT], first_party=True)


def test_a_token_signed_by_an_unknown_key_is_not_ours(db: None) -> None:
    other = jwk.JWK.generate(kty="RSA", size=2048, kid="other")
    forged = jwt.JWT(header={"alg": "RS256", "kid": "other"}, claims={"sub": "1"})
    forged.make_signed_token(other)
    assert not verifies(forged.serialize())
    assert keys.by_kid("other") is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_first_key_made_by_several_processes_at_once_is_one() -> None:
    from tests.audit.test_concurrency import in_threads

    keys._load.cache_clear()
    kids = in_threads(6, lambda _i: keys.current().kid)
    assert len(set(kids)) == 1
    assert SigningKey.objects.filter(signing=True).count() == 1
