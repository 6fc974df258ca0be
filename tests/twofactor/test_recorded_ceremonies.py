"""Known-answer ceremonies: a registration and a passkey sign-in recorded from real Chromium
(its CDP virtual authenticator; the file says how, tests/twofactor/vectors/), replayed
through Keyfob's flows. The browser, not our software authenticator, made these bytes: what
Keyfob stores and accepts from them is pinned here, and any byte changed is refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.http import HttpRequest
from django.test import RequestFactory

from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.twofactor import flows
from keyfob.twofactor.models import Purpose, SecurityKey, WebAuthnChallenge
from tests.conftest import confirmed_now, make_user

pytestmark = pytest.mark.django_db
VECTOR = json.loads((Path(__file__).parent / "vectors/chromium_ceremonies.json").read_text())
HOST = VECTOR["origin"].removeprefix("http://")  # localhost:8765
CTX = Context(address="192.0.2.1", user_agent="recorded")


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def request_at(user: User | None, host: str = HOST) -> HttpRequest:
    request = RequestFactory().post("/", HTTP_HOST=host, REMOTE_ADDR="192.0.2.1")
    request.session = SessionStore()
    request.user = user if user is not None else AnonymousUser()
    if user is not None:
        confirmed_now(request, user)
    return request


def recorded_challenge(
    request: HttpRequest, purpose: Purpose, user: User | None, step: str
) -> None:
    """Begin the ceremony as the page would, then give its row the challenge (and, to
    register, the user handle) the recording was made with."""
    flows.begin(request, purpose, user)
    changes: dict[str, Any] = {"challenge": b64(VECTOR[step]["challenge"])}
    if purpose == Purpose.REGISTER:
        changes["user_handle"] = VECTOR[step]["user_handle"]
    WebAuthnChallenge.objects.filter(purpose=purpose).update(**changes)


def answer(step: str, **changes: Any) -> str:
    credential = json.loads(json.dumps(VECTOR[step]["credential"]))
    credential["response"].update(changes)
    return json.dumps(credential)


def register(alice: User) -> SecurityKey:
    request = request_at(alice)
    recorded_challenge(request, Purpose.REGISTER, alice, "registration")
    flows.register_key(request, alice, answer("registration"), "Recorded key", CTX)
    return SecurityKey.objects.get(user=alice)


@pytest.fixture
def alice(db: None) -> User:
    return make_user("alice@example.com")


def test_the_recorded_registration_is_stored_as_the_browser_made_it(alice: User) -> None:
    key = register(alice)
    assert key.credential_id == VECTOR["registration"]["credential"]["rawId"]
    assert key.user_handle == VECTOR["registration"]["user_handle"]
    assert key.user_verified and key.discoverable and key.passwordless  # credProps rk: true
    assert not key.backup_eligible and key.kind_label == "Passkey on one device"
    assert key.sign_count == 1  # Chromium's virtual authenticator counts from 1
    assert key.transports == sorted(VECTOR["registration"]["credential"]["response"]["transports"])


def test_the_recorded_passkey_sign_in_finds_the_account(alice: User) -> None:
    register(alice)
    request = request_at(None)
    recorded_challenge(request, Purpose.PASSWORDLESS, None, "authentication")
    key = flows.verify_key(request, Purpose.PASSWORDLESS, answer("authentication"), CTX)
    assert key.user == alice and key.sign_count == 1
    key.refresh_from_db()
    assert key.sign_count == 2 and key.last_used_at is not None


def test_the_recorded_answer_works_once(alice: User) -> None:
    """Replayed into a new challenge, its signature is over the old one."""
    register(alice)
    first = request_at(None)
    recorded_challenge(first, Purpose.PASSWORDLESS, None, "authentication")
    flows.verify_key(first, Purpose.PASSWORDLESS, answer("authentication"), CTX)
    again = request_at(None)
    flows.begin(again, Purpose.PASSWORDLESS)
    with pytest.raises(flows.KeyRefused):
        flows.verify_key(again, Purpose.PASSWORDLESS, answer("authentication"), CTX)


def test_a_changed_byte_or_another_origin_is_refused(alice: User) -> None:
    elsewhere = request_at(alice, host="localhost:9999")
    recorded_challenge(elsewhere, Purpose.REGISTER, alice, "registration")
    with pytest.raises(flows.KeyRefused):
        flows.register_key(elsewhere, alice, answer("registration"), "", CTX)
    register(alice)
    signature = b64(VECTOR["authentication"]["credential"]["response"]["signature"])
    flipped = base64.urlsafe_b64encode(signature[:-1] + bytes([signature[-1] ^ 1])).decode()
    request = request_at(None)
    recorded_challenge(request, Purpose.PASSWORDLESS, None, "authentication")
    with pytest.raises(flows.KeyRefused):
        flows.verify_key(
            request, Purpose.PASSWORDLESS, answer("authentication", signature=flipped), CTX
        )
    # The right answer still signs in: a wrong one did not spend the challenge.
    assert flows.verify_key(request, Purpose.PASSWORDLESS, answer("authentication"), CTX)
