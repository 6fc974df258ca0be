"""Security keys and passkeys made through Keyfob's own flows, with the software
authenticator (tests/webauthn_soft.py) playing the browser: the state the passkey tests
start from, and the requests they answer.

A registration here is the real one (``flows.begin`` then ``flows.register_key``, the
attestation checked by the library), so a key's flags in the database are what the
ceremony said: ``user_verified`` from the UV flag, ``discoverable`` from the credProps
extension a browser reports (the software authenticator reports none: ``register`` writes
what a browser would).
"""

from __future__ import annotations

import json
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.test import RequestFactory

from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.twofactor import flows
from keyfob.twofactor.models import Purpose, SecurityKey
from tests.conftest import confirmed_now
from tests.webauthn_soft import SoftAuthenticator

# The Django test client's origin once its host is the relying party id ("localhost").
HOST = "localhost"
ORIGIN = f"http://{HOST}"
CONTEXT = Context(address="192.0.2.1", user_agent="tests")


def new_session() -> SessionBase:
    store: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
    return store()


def web_request(session: SessionBase | None = None, host: str = HOST) -> HttpRequest:
    """A POST from a browser at ``host`` with ``session`` (a new one if None), for the flows
    that read the page's origin and keep their challenge's token in the session."""
    request = RequestFactory(HTTP_HOST=host).post("/")
    request.session = session if session is not None else new_session()
    return request


def register(
    user: User,
    soft: SoftAuthenticator | None = None,
    *,
    resident: bool = True,
    user_verified: bool = True,
    report_resident: bool | None = None,
    name: str = "",
    **knobs: Any,
) -> tuple[SoftAuthenticator, SecurityKey]:
    """Add a key to ``user`` through the flows; return its authenticator and its row.

    ``resident``: the authenticator keeps the account (a passkey); ``user_verified``: it
    verified its user (PIN, fingerprint); ``report_resident``: what the browser's credProps
    says (default: ``resident``; False is a browser that does not report it). A new
    authenticator is a platform one (this device's) for a passkey, a USB key otherwise.
    """
    if soft is None:
        soft = SoftAuthenticator(transports=("internal",) if resident else ("usb",))
    request = web_request()
    # Adding a key is a sensitive change: its page comes after "Confirm it is you".
    confirmed_now(request, user)
    options = flows.begin(request, Purpose.REGISTER, user)
    credential = soft.create(
        options, ORIGIN, resident=resident, user_verified=user_verified, **knobs
    )
    if report_resident is None:
        report_resident = resident
    credential["clientExtensionResults"] = {"credProps": {"rk": report_resident}}
    flows.register_key(
        request, user, json.dumps(credential), name, CONTEXT, invite=staff_invite(user)
    )
    return soft, SecurityKey.objects.get(credential_id=soft.credentials[-1].id_b64)


def staff_invite(user: User) -> str:
    """The enrolment code an operator gives a staff member for their first key (``keyfob
    staff-key-invite``), when the account needs one; else ""."""
    if not flows.needs_staff_invite(user):
        return ""
    return flows.issue_staff_key_invite(user.email, CONTEXT)[1]


def passkey_options(request: HttpRequest) -> dict[str, Any]:
    """The options a sign-in without password gives this request's session."""
    return flows.begin(request, Purpose.PASSWORDLESS)


def assertion(
    soft: SoftAuthenticator, options: dict[str, Any], key: SecurityKey | None = None, **knobs: Any
) -> str:
    """The browser's answer (JSON text, as the form posts it) to ``options``, signed by
    ``key``'s credential (else the newest passkey ``soft`` holds)."""
    if key is not None:
        knobs.setdefault("credential_id", key.credential_id)
    return json.dumps(soft.get(options, ORIGIN, **knobs))
