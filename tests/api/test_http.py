"""The API's HTTP surface: errors as JSON with the right status, never a 500; login links;
the OpenAPI document; the commands; the Security page's SSH section."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import ServerToken, SshLinkRequest, SshLogin
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from tests.api.conftest import Api
from tests.conftest import PASSWORD, Enrolled


def error_of(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return str(body["error"]["code"])


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "malformed"),
        (b"{", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'"login"', "malformed"),
        (b"[" * 3000 + b"]" * 3000, "too_large"),
        (b"[" * 2000 + b"]" * 2000, "malformed"),
        ({"code": "123456"}, "invalid_field"),
        ({"login": 7, "code": "123456"}, "invalid_field"),
        ({"login": "al ice", "code": "123456"}, "invalid_login"),
        ({"login": "a" * 33, "code": "123456"}, "invalid_login"),
        ({"login": "alice\x00", "code": "123456"}, "invalid_login"),
        ({"login": "alice", "code": ""}, "invalid_code"),
        ({"login": "alice", "code": None}, "invalid_field"),
        ({"login": "alice", "code": ["123456"]}, "invalid_field"),
        ({"login": "alice", "code": "1" * 65}, "invalid_code"),
        ({"login": "alice", "code": "١٢٣٤٥٦"}, "invalid_code"),
        ({"login": "alice", "code": "\ud800"}, "invalid_code"),
        ({"login": "alice", "code": "123456", "client_address": "nowhere"}, "invalid_field"),
        ({"login": "alice", "code": "123456", "client_address": 1}, "invalid_field"),
    ],
)
def test_malformed_requests_get_400_or_413_and_change_nothing(
    api: Api, linked: Enrolled, body: object, code: str
) -> None:
    before = SecurityEvent.objects.count()
    response = api.post("ssh/verify", body)
    assert response.status_code == (413 if code == "too_large" else 400)
    assert error_of(response) == code
    assert SecurityEvent.objects.count() == before


@override_settings(KEYFOB_API_MAX_BODY=100)
def test_the_body_limit_is_a_setting(api: Api, linked: Enrolled) -> None:
    padded = {"login": "alice", "code": "123456", "pad": "x" * 100}
    response = api.post("ssh/verify", padded)
    assert response.status_code == 413 and error_of(response) == "too_large"


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
def test_wrong_method_is_405_with_allow(api: Api, method: str) -> None:
    response = api.client.generic(method, "/api/v1/ssh/verify")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    if method != "HEAD":
        assert error_of(response) == "method_not_allowed"


def test_openapi_document_is_served_and_lists_the_endpoints(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    doc = json.loads(response.content)
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/openapi.json",
        "/ssh/verify",
        "/ssh/check",
        "/ssh/principals",
        "/ssh/certificates",
        "/ssh/ca",
        "/ssh/krl",
        "/ssh/logins",
        "/ssh/logins/{login}",
    }
    assert client.post("/api/v1/openapi.json").status_code == 405


# -- login links through the API ----------------------------------------------------------


def test_links_need_a_token_allowed_to_manage_them(api: Api, linked: Enrolled) -> None:
    response = api.client.get(
        "/api/v1/ssh/logins", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 403 and error_of(response) == "forbidden"
    body = {"email": "alice@example.com", "login": "deploy"}
    assert api.post("ssh/logins", body).status_code == 403
    assert not SshLogin.objects.filter(login="deploy").exists()


def test_link_request_list_and_unlink(client: Client, linked: Enrolled) -> None:
    """The provisioning round trip on a server's own links (issue 22: a request, confirmed
    by the account's owner; tests/api/test_manage_links.py has the attacks)."""
    row, token = flows.create_token("web1", manage_links=True)
    manager = Api(client, token, row)
    auth = {"Authorization": f"Bearer {manager.token}"}
    body = {"email": "Alice@Example.com", "login": "deploy"}
    asked = manager.post("ssh/logins", body)
    assert asked.status_code == 202, asked.content
    assert asked.json() == {"login": "deploy", "server": "web1", "status": "pending"}
    assert manager.post("ssh/logins", {**body, "server": "web1"}).status_code == 202
    assert SshLinkRequest.objects.filter(login="deploy").count() == 1  # asked once
    event = SecurityEvent.objects.get(kind=EventKind.SSH_LINK_REQUESTED, detail__login="deploy")
    assert event.channel == Channel.API and event.user_agent == "api:web1"

    already = manager.post("ssh/logins", {**body, "login": "alice"})
    assert already.status_code == 200 and already.json()["status"] == "linked"
    bob = User.objects.create_user("bob@example.com", PASSWORD)
    taken = manager.post("ssh/logins", {**body, "login": "alice", "email": bob.email})
    assert taken.status_code == 409 and error_of(taken) == "login_taken"
    bad = manager.post("ssh/logins", {**body, "email": "not an address"})
    assert bad.status_code == 400 and error_of(bad) == "invalid_email"

    listed = manager.client.get("/api/v1/ssh/logins?email=alice@example.com", headers=auth)
    assert [(x["login"], x["server"]) for x in listed.json()["logins"]] == [("alice", "web1")]
    assert manager.client.get("/api/v1/ssh/logins?login=a b", headers=auth).status_code == 400

    gone = manager.client.delete("/api/v1/ssh/logins/alice", headers=auth)
    assert gone.status_code == 204
    again = manager.client.delete("/api/v1/ssh/logins/alice?server=web1", headers=auth)
    assert again.status_code == 404
    assert SecurityEvent.objects.filter(kind=EventKind.SSH_UNLINKED).count() == 1
    # Unlinking a login withdraws the requests waiting for it on that server.
    assert manager.client.delete("/api/v1/ssh/logins/deploy", headers=auth).status_code == 404
    assert not SshLinkRequest.objects.exists()


# -- the commands -------------------------------------------------------------------------


def test_server_token_commands(db: None) -> None:
    out, err = StringIO(), StringIO()
    call_command("server-token", "create", "web9", "--manage-links", stdout=out, stderr=err)
    token = out.getvalue().strip()
    assert token.startswith("kfs_") and "shown once" in err.getvalue()
    row = ServerToken.objects.get(name="web9")
    assert row.can_manage_links and token not in row.digest and row.digest != token
    assert flows.authenticate(f"Bearer {token}") == row
    with pytest.raises(CommandError, match="already exists"):
        call_command("server-token", "create", "web9", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError):
        call_command("server-token", "create", "bad name", stdout=StringIO(), stderr=StringIO())
    listed = StringIO()
    call_command("server-token", "list", stdout=listed)
    assert "web9\tactive" in listed.getvalue() and token not in listed.getvalue()
    call_command("server-token", "revoke", "web9", stdout=StringIO())
    assert flows.authenticate(f"Bearer {token}") is None
    with pytest.raises(CommandError, match="no active token"):
        call_command("server-token", "revoke", "web9", stdout=StringIO())


def test_ssh_link_commands(user_with_totp: Enrolled) -> None:
    call_command("ssh-link", "ALICE@example.com", "alice", "--server", "web1", stdout=StringIO())
    call_command("ssh-link", "alice@example.com", "root2", "--server", "web1", stdout=StringIO())
    assert {(r.login, r.server) for r in SshLogin.objects.all()} == {
        ("alice", "web1"),
        ("root2", "web1"),
    }
    with pytest.raises(CommandError, match="no account"):
        call_command("ssh-link", "nobody@example.com", "x", "--server", "web1", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("ssh-link", "alice@example.com", "bad/login", "--server", "web1")
    call_command("ssh-unlink", "root2", "--server", "web1", stdout=StringIO())
    with pytest.raises(CommandError, match="no link"):
        call_command("ssh-unlink", "root2", stdout=StringIO())
    cli_events = SecurityEvent.objects.filter(channel=Channel.CLI)
    assert sorted(cli_events.values_list("kind", flat=True)) == [
        EventKind.SSH_LINKED,
        EventKind.SSH_LINKED,
        EventKind.SSH_UNLINKED,
    ]


# -- the Security page --------------------------------------------------------------------


def test_security_page_lists_the_linked_logins(
    client: Client, api: Api, linked: Enrolled, frozen_time: float
) -> None:
    assert api.verify("alice", linked.code(), client_address="198.51.100.7")["result"] == (
        "accepted"
    )
    client.force_login(linked.user)
    page = client.get("/account/security/").content.decode()
    section = page.split('id="ssh"')[1].split("</section>")[0]
    assert "SSH logins protected by your 2FA" in section
    assert "<code>alice</code>" in section and "web1" in section and "198.51.100.7" in section
    activity = page.split('id="activity"')[1]
    assert "SSH" in activity and "198.51.100.7" in activity


def test_security_page_without_links_says_so(client: Client, user: User) -> None:
    client.force_login(user)
    page = client.get("/account/security/").content.decode()
    assert "No SSH login is linked to your account" in page


# -- junk of every shape: never a 500 ----------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "login": json_values | st.from_regex(r"\A[a-z][a-z0-9._-]{0,40}\Z"),
        "code": json_values | st.from_regex(r"\A[0-9A-Za-z -]{0,70}\Z"),
        "client_address": json_values | st.ip_addresses().map(str),
        "email": json_values | st.emails(),
        "server": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["ssh/verify", "ssh/check", "ssh/logins", "ssh/principals"]),
    body=st.one_of(fields, json_values.map(json.dumps), st.binary(max_size=200)),
)
def test_junk_bodies_never_make_a_500(manager: Api, linked: Enrolled, path: str, body) -> None:  # type: ignore[no-untyped-def]
    response = manager.post(path, body)
    # 202: a link asked for, waiting for the customer's answer (issue 22); 403: a manage
    # token naming another server than its own.
    assert response.status_code in {200, 201, 202, 400, 403, 404, 409, 413}, response.content
    data = response.json()
    if response.status_code >= 400:
        error_of(response)
    elif response.status_code == 202:
        assert path == "ssh/logins" and data["status"] == "pending"
    elif path == "ssh/verify":
        assert data["result"] in {"accepted", "rejected", "throttled", "unknown_login"}
    elif path == "ssh/principals":
        assert data["principals"] in ([], [f"keyfob-{linked.user.pk}"])
