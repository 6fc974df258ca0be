"""Issue 15: a server token reaches only the logins linked on its own server.

Before the fix a login linked "for every server" (the default of `keyfob ssh-link`) could
be verified, probed with /ssh/check and throttle-locked by any server's token, a token on
another customer's server included. Seen failing on the code before the fix: the old link
for every server answered "accepted" to another server's token, `ssh-link` without
--server and a link over another account's old link were accepted.
"""

from __future__ import annotations

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.test import Client

from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import SshLogin
from keyfob.audit.events import Context
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.core import throttle
from keyfob.core.models import Throttle
from tests.api.conftest import Api
from tests.api.test_verify import wrong
from tests.conftest import PASSWORD, Enrolled

CLI = Context(channel=Channel.CLI)


@pytest.fixture
def other(db: None, client: Client) -> Api:
    """The token of server web2: another customer's server, where that customer is root."""
    row, token = flows.create_token("web2")
    return Api(client, token, row)


def test_another_servers_token_cannot_verify_check_or_lock_a_login(
    api: Api, other: Api, linked: Enrolled, frozen_time: float
) -> None:
    before = (SecurityEvent.objects.count(), list(Throttle.objects.values()))
    assert other.verify("alice", linked.code()) == {"result": "unknown_login"}
    assert other.post("ssh/check", {"login": "alice"}).json() == {"result": "unknown_login"}
    bad = wrong(linked)
    for _ in range(throttle.CODE.free + 3):
        assert other.verify("alice", bad) == {"result": "unknown_login"}
    # Nothing recorded, nothing counted: web1, alice's own server, still lets her in.
    assert (SecurityEvent.objects.count(), list(Throttle.objects.values())) == before
    assert api.verify("alice", linked.code()) == {"result": "accepted"}


def test_an_old_link_for_every_server_reaches_no_token(
    client: Client, api: Api, user_with_totp: Enrolled, frozen_time: float
) -> None:
    # A row as releases before issue 15 wrote it: no flow makes one any more.
    SshLogin.objects.create(login="alice", server="", user=user_with_totp.user)
    assert api.verify("alice", user_with_totp.code()) == {"result": "unknown_login"}
    assert api.post("ssh/check", {"login": "alice"}).json() == {"result": "unknown_login"}
    assert not SecurityEvent.objects.filter(kind=EventKind.SIGNIN_OK).exists()
    # Its owner sees it is no longer in force.
    client.force_login(user_with_totp.user)
    section = client.get("/account/security/").content.decode().split('id="ssh"')[1]
    assert "Every server — no longer in force" in section.split("</section>")[0]


def test_a_link_names_its_server_in_the_command_and_the_api(
    manager: Api, user_with_totp: Enrolled
) -> None:
    with pytest.raises(CommandError, match="name the server"):
        call_command("ssh-link", "alice@example.com", "alice", stdout=StringIO())
    # Through the API, the server is the token's own (issue 22), named or not.
    for body in ({}, {"server": ""}, {"server": "provisioning"}):
        response = manager.post(
            "ssh/logins", {"email": "alice@example.com", "login": "alice", **body}
        )
        assert response.status_code == 202
        assert response.json()["server"] == "provisioning"
    assert not SshLogin.objects.exists()
    assert not SecurityEvent.objects.filter(kind=EventKind.SSH_LINKED).exists()


def test_a_link_cannot_shadow_another_accounts_link(
    api: Api, linked: Enrolled, frozen_time: float
) -> None:
    bob = User.objects.create_user("bob@example.com", PASSWORD)
    with pytest.raises(flows.ApiError) as taken:
        flows.link(bob, "alice", "web1", CLI)
    assert taken.value.code == "login_taken"
    # An old link for every server still claims its login on every server: no new link of
    # another account takes it over quietly.
    SshLogin.objects.create(login="deploy", server="", user=linked.user)  # pre-issue-15 row
    with pytest.raises(flows.ApiError) as claimed:
        flows.link(bob, "deploy", "web2", CLI)
    assert claimed.value.code == "login_taken"
    flows.link(linked.user, "deploy", "web2", CLI)  # its own account may link it
    assert api.verify("alice", linked.code()) == {"result": "accepted"}  # still alice's


def test_the_migration_keeps_old_links_where_they_were_used(
    api: Api, user_with_totp: Enrolled, frozen_time: float
) -> None:
    """An old link used on web1 becomes a link on web1; one used nowhere stays, in force
    nowhere; a server where the login is another account's keeps that account's link."""
    alice = user_with_totp.user
    bob = User.objects.create_user("bob@example.com", PASSWORD)
    flows.link(alice, "alice", "web1", CLI)
    assert api.verify("alice", user_with_totp.code()) == {"result": "accepted"}
    flows.unlink("alice", "web1", CLI)
    # Rows as releases before issue 15 wrote them.
    SshLogin.objects.create(login="alice", server="", user=alice)
    SshLogin.objects.create(login="idle", server="", user=alice)
    SshLogin.objects.create(login="shared", server="", user=alice)
    SshLogin.objects.create(login="shared", server="web1", user=bob)
    SecurityEvent.objects.create(
        user=alice, kind=EventKind.SIGNIN_OK, channel=Channel.SSH,
        detail={"login": "shared", "server": "web1", "factor": "code"},
    )  # fmt: skip

    migration = importlib.import_module("keyfob.api.migrations.0002_links_per_server")
    migration.per_server(apps, None)

    rows = {(r.login, r.server, r.user.email) for r in SshLogin.objects.select_related("user")}
    assert rows == {
        ("alice", "web1", "alice@example.com"),
        ("idle", "", "alice@example.com"),
        ("shared", "", "alice@example.com"),
        ("shared", "web1", "bob@example.com"),
    }
