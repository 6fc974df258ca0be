"""``POST /api/v1/ssh/certificates`` (issue 26): what ``keyfob-ssh login`` calls with the
access token its device grant got. One certificate per approval, only for the
keyfob-ssh client's ``ssh`` scope, soon after the approval; junk gets a clear refusal."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client as Http
from oauth2_provider.models import get_access_token_model

from keyfob.api import flows
from keyfob.api.models import SshCertificate
from keyfob.core import clock
from keyfob.oidc.models import Client
from tests.api.test_sshca import CONTEXT, inspect, user_key
from tests.conftest import Enrolled, make_user

URL = "/api/v1/ssh/certificates"


def access_token(
    user: Any, *, client_id: str = "keyfob-ssh", scope: str = "ssh", age: int = 0
) -> str:
    """An access token as the device grant gives keyfob-ssh login once approved."""
    value = secrets.token_urlsafe(30)
    if client_id == "keyfob-ssh" and not Client.objects.filter(client_id=client_id).exists():
        # A transactional test's flush empties the table oidc's data migration filled.
        Client.objects.create(
            client_id="keyfob-ssh",
            name="keyfob-ssh",
            client_type=Client.CLIENT_PUBLIC,
            authorization_grant_type=Client.GRANT_DEVICE_CODE,
            client_secret="",
            skip_authorization=True,
            algorithm=Client.RS256_ALGORITHM,
        )
    row = get_access_token_model()(
        user=user,
        application=Client.objects.get(client_id=client_id),
        scope=scope,
        expires=clock.now() + timedelta(minutes=10),
    )
    from oauth2_provider.models import set_token_value

    set_token_value(row, value)
    row.save()
    if age:
        type(row).objects.filter(pk=row.pk).update(created=clock.now() - timedelta(seconds=age))
    return value


def post(body: object, token: str | None = None, raw: bytes | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else json.dumps(body).encode()
    return Http().post(URL, data, content_type="application/json", **headers)


@pytest.fixture
def linked(user_with_totp: Enrolled) -> Enrolled:
    flows.link(user_with_totp.user, "alice", "web1", CONTEXT)
    return user_with_totp


def test_an_approved_token_gets_one_certificate(tmp_path: Path, linked: Enrolled) -> None:
    key = user_key(tmp_path)
    token = access_token(linked.user)
    answer = post({"public_key": key.with_suffix(".pub").read_text()}, token)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["logins"] == ["alice@web1"]
    shown = inspect(tmp_path, body["certificate"])
    assert f"keyfob-{linked.user.pk}" in shown
    assert SshCertificate.objects.filter(user=linked.user).count() == 1
    # The token is used up: a second certificate needs a second approval.
    again = post({"public_key": key.with_suffix(".pub").read_text()}, token)
    assert again.status_code == 401 and again.json()["error"]["code"] == "unauthorized"
    assert SshCertificate.objects.count() == 1


def test_refusals(tmp_path: Path, linked: Enrolled) -> None:
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    assert post({"public_key": line}).status_code == 401
    assert post({"public_key": line}, "not-a-token").status_code == 401
    # A token of another app, or without the ssh scope.
    other, _secret = __import__("keyfob.oidc.flows", fromlist=["x"]).create_client(
        "Panel", ["https://panel.example/cb"]
    )
    refused = post({"public_key": line}, access_token(linked.user, client_id=other.client_id))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert post({"public_key": line}, access_token(linked.user, scope="openid")).status_code == 401
    # An approval too old.
    stale = post({"public_key": line}, access_token(linked.user, age=3600))
    assert stale.status_code == 403 and stale.json()["error"]["code"] == "approval_too_old"
    assert SshCertificate.objects.count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"null",
        b'{"public_key": 5}',
        b'{"public_key": "ssh-ed25519"}',
        b'{"public_key": "ssh-rsa AAAAB3NzaC1yc2E"}',
        b'{"public_key": "\\u0000\\u0001"}',
        b"\xff\xfe",
        b'{"public_key": "' + b"A" * 9000 + b'"}',
    ],
)
def test_junk_is_refused_and_keeps_the_token(linked: Enrolled, raw: bytes) -> None:
    token = access_token(linked.user)
    answer = post(None, token, raw=raw)
    assert 400 <= answer.status_code < 500, (raw, answer.status_code)
    assert answer.json()["error"]["message"]
    assert SshCertificate.objects.count() == 0
    # A refused request does not use the approval up.
    assert get_access_token_model().objects.filter(user=linked.user).count() == 1


def test_fido_keys_are_refused_with_a_reason(linked: Enrolled) -> None:
    line = (
        "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAICFo2Dk1"
        "Lz+1fEc4H0L7Ej0Y8HBqtTfM3W0v0cT6ZoL1AAAABHNzaDo= me@laptop"
    )
    answer = post({"public_key": line}, access_token(linked.user))
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] in ("sk_key", "invalid_key")


def test_an_account_without_2fa_gets_none(tmp_path: Path, db: None) -> None:
    user = make_user("nofa@example.com")
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    answer = post({"public_key": line}, access_token(user))
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "twofactor_off"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_token_sent_eight_times_at_once_makes_one_certificate(tmp_path: Path) -> None:
    from tests.audit.test_concurrency import in_threads
    from tests.conftest import enrol

    user = make_user("race@example.com")
    enrol(user)
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    token = access_token(user)
    codes = in_threads(8, lambda _i: post({"public_key": line}, token).status_code)
    assert sorted(codes) == [200] + [401] * 7
    assert SshCertificate.objects.filter(user=user).count() == 1


def test_the_security_page_lists_the_certificates(tmp_path: Path, linked: Enrolled) -> None:
    from tests.conftest import prove_for_client

    line = user_key(tmp_path).with_suffix(".pub").read_text()
    assert post({"public_key": line}, access_token(linked.user)).status_code == 200
    row = SshCertificate.objects.get(user=linked.user)
    browser = Http()
    browser.force_login(linked.user)
    prove_for_client(browser, linked.user)
    page = browser.get("/account/security/").content.decode()
    assert "SSH certificates issued" in page and row.fingerprint in page


def test_the_approval_says_which_granted_logins_a_certificate_opens(linked: Enrolled) -> None:
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import RequestFactory

    from keyfob.accounts.models import Factor
    from keyfob.api.views import ssh_certificate_detail
    from keyfob.teams.models import Grant, Rule
    from tests.conftest import confirmed_now, enrol

    member = make_user("member@example.com")
    enrol(member)
    Grant.objects.create(
        owner=linked.user, member=member, logins=[["alice", "web1"]], rule=Rule.KEY
    )

    def page(*factors: str) -> str:
        request = RequestFactory().get("/oidc/device/")
        request.session = SessionStore()
        confirmed_now(request, member, *factors)
        return ssh_certificate_detail(request, member)

    with_code = page(Factor.APP_CODE)
    assert "for the account of alice@example.com" in with_code
    assert "waits for a security key" in with_code
    with_key = page(Factor.SECURITY_KEY)
    assert "for the account of alice@example.com" in with_key
    assert "waits for a security key" not in with_key
