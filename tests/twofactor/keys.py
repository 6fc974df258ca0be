"""Security keys for tests, added and used through Keyfob's own flows and pages, with the
software authenticator (tests/webauthn_soft.py) as the browser and the key.

The Django test client speaks to "localhost" here (``key_client``): the relying party id is
"localhost" by default, and a page at another host may not use a key at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.conftest import confirmed_now
from tests.webauthn_soft import SoftAuthenticator, SoftCredential

if TYPE_CHECKING:
    from django.test import Client

    from keyfob.accounts.models import User
    from keyfob.twofactor.models import SecurityKey

HOST = "localhost"
ORIGIN = f"http://{HOST}"


@dataclass
class EnrolledKey:
    """An account's security key: the authenticator that holds it, its row, and the
    recovery codes made when it turned 2FA on (empty when it was one more)."""

    user: User
    soft: SoftAuthenticator
    credential: SoftCredential
    key: SecurityKey
    recovery_codes: list[str] = field(default_factory=list)


def key_client() -> Client:
    from django.test import Client

    return Client(HTTP_HOST=HOST)


def enrol_key(
    user: User, name: str = "", soft: SoftAuthenticator | None = None, **knobs: Any
) -> EnrolledKey:
    """Add a security key to ``user`` as the "Add a security key" page does (a session with
    a fresh confirmation, the registration options, the authenticator's answer); ``knobs``
    go to ``SoftAuthenticator.create`` (resident, user_verified, backup_eligible…)."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from keyfob.audit.events import Context
    from keyfob.twofactor import flows
    from keyfob.twofactor.models import Purpose, SecurityKey

    soft = soft or SoftAuthenticator()
    request = RequestFactory().post("/", HTTP_HOST=HOST)
    request.session = SessionStore()
    request.user = user
    confirmed_now(request, user)
    options = flows.begin(request, Purpose.REGISTER, user)
    answer = with_cred_props(soft.create(options, ORIGIN, **knobs), knobs)
    from tests.twofactor.passkeys import staff_invite

    codes = flows.register_key(
        request,
        user,
        json.dumps(answer),
        name,
        Context(address="192.0.2.1", user_agent="tests"),
        invite=staff_invite(user),
    )
    credential = soft.credentials[-1]
    key = SecurityKey.objects.get(credential_id=credential.id_b64)
    return EnrolledKey(user, soft, credential, key, codes)


def with_cred_props(answer: dict[str, Any], knobs: dict[str, Any]) -> dict[str, Any]:
    """What a browser adds to a registration when the options ask for ``credProps`` (Keyfob
    asks): whether the key stored the account, a discoverable credential (a passkey)."""
    answer["clientExtensionResults"] = {"credProps": {"rk": bool(knobs.get("resident"))}}
    return answer


def options(client: Client, url: str) -> dict[str, Any]:
    """Press a page's key button: the options the page's script gets (JSON)."""
    response = client.post(url)
    assert response.status_code == 200, response.content
    found: dict[str, Any] = response.json()
    return found


def signed(client: Client, url: str, soft: SoftAuthenticator, **knobs: Any) -> str:
    """The options from ``url``, signed by ``soft`` as a browser would: the JSON posted in
    the form's ``credential`` field."""
    return json.dumps(soft.get(options(client, url), ORIGIN, **knobs))


def created(client: Client, soft: SoftAuthenticator, **knobs: Any) -> str:
    """The "Add a security key" page's options answered by ``soft`` (registration JSON)."""
    return json.dumps(
        soft.create(options(client, "/account/security/keys/options/"), ORIGIN, **knobs)
    )
