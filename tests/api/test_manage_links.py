"""Issue 22: a ``--manage-links`` token acts for its own server only, and a link needs the
account's consent.

Each attack of the issue is a test here; on the code before the fix, a manage token linked
a customer's login on any server at once (201), then locked the account's 2FA with wrong
codes through its own link, listed every server's links with their e-mails, answered 404
"unknown_account" for an address without an account, deleted other servers' links, and
mailed no one.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import reverse

from keyfob.accounts.flows import ReauthRequired
from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import SshLinkRequest, SshLogin
from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.models import Channel, EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock, throttle
from keyfob.core.models import Throttle
from keyfob.twofactor import flows as twofactor
from tests.api.conftest import Api
from tests.api.test_verify import wrong
from tests.conftest import PASSWORD, Enrolled, password_step

CLI = Context(channel=Channel.CLI)


def token(client: Client, name: str, *, manage: bool = False) -> Api:
    row, value = flows.create_token(name, manage_links=manage)
    return Api(client, value, row)


@pytest.fixture
def rogue(db: None, client: Client) -> Api:
    """The manage token of server web9: a customer's own server where that customer is
    root (or a provider's token gone astray)."""
    return token(client, "web9", manage=True)


def get(api: Api, path: str) -> Any:
    return api.client.get(f"/api/v1/{path}", headers={"Authorization": f"Bearer {api.token}"})


def delete(api: Api, path: str) -> Any:
    return api.client.delete(f"/api/v1/{path}", headers={"Authorization": f"Bearer {api.token}"})


def signed_in(client: Client, enrolled: Enrolled) -> Client:
    """Signed in with password and code just now: a recent re-authentication."""
    assert password_step(client).status_code == 302
    response = client.post("/login/code/", {"code": enrolled.code()})
    assert response.status_code == 302 and not response["Location"].startswith("/login")
    return client


# -- the attacks -------------------------------------------------------------------------


def test_a_manage_token_cannot_link_a_login_on_another_server(
    rogue: Api, api: Api, user_with_totp: Enrolled, frozen_time: float
) -> None:
    response = rogue.post(
        "ssh/logins", {"email": "alice@example.com", "login": "alice", "server": "web1"}
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "other_server"
    assert not SshLogin.objects.exists() and not SshLinkRequest.objects.exists()
    assert api.verify("alice", user_with_totp.code()) == {"result": "unknown_login"}


def test_wrong_codes_through_an_unconfirmed_link_cannot_lock_the_account(
    client: Client, rogue: Api, user_with_totp: Enrolled, frozen_time: float
) -> None:
    alice = user_with_totp.user
    asked = rogue.post("ssh/logins", {"email": "alice@example.com", "login": "alice"})
    assert asked.status_code == 202 and asked.json()["status"] == "pending"
    before = (kinds(alice), list(Throttle.objects.values()))
    bad = wrong(user_with_totp)
    for _ in range(throttle.CODE.free + 5):
        # In force nowhere: the same answer as a login nobody linked, nothing counted.
        assert rogue.verify("alice", bad) == {"result": "unknown_login"}
    assert rogue.post("ssh/check", {"login": "alice"}).json() == {"result": "unknown_login"}
    assert rogue.verify("alice", user_with_totp.code()) == {"result": "unknown_login"}
    assert (kinds(alice), list(Throttle.objects.values())) == before
    # Alice's own code still works at once on the portal.
    twofactor.verify_code(alice, user_with_totp.code(), Context())


def test_listing_shows_only_the_tokens_own_servers_links(
    client: Client, rogue: Api, user_with_totp: Enrolled
) -> None:
    bob = User.objects.create_user("bob@example.com", PASSWORD)
    flows.link(user_with_totp.user, "alice", "web1", CLI)
    flows.link(bob, "bob", "web9", CLI)
    listed = get(rogue, "ssh/logins").json()["logins"]
    assert [(x["login"], x["server"], x["email"]) for x in listed] == [
        ("bob", "web9", "bob@example.com")
    ]
    flows.request_link("alice@example.com", "ops", "web9", CLI)  # waiting: not listed
    assert len(get(rogue, "ssh/logins").json()["logins"]) == 1
    assert get(rogue, "ssh/logins?email=alice@example.com").json() == {"logins": []}
    assert get(rogue, "ssh/logins?login=alice").json() == {"logins": []}
    for other in ("web1", ""):
        refused = get(rogue, f"ssh/logins?server={other}" if other else "ssh/logins?server=x")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "other_server"


def test_the_api_never_says_whether_an_address_has_an_account(
    rogue: Api, user_with_totp: Enrolled
) -> None:
    answers = [
        rogue.post("ssh/logins", {"email": email, "login": "probe"})
        for email in ("alice@example.com", "nobody@example.com")
    ]
    assert [r.status_code for r in answers] == [202, 202]
    assert (
        answers[0].json()
        == answers[1].json()
        == {
            "login": "probe",
            "server": "web9",
            "status": "pending",
        }
    )
    # Asking the same login for another address afterwards tells nothing either.
    third = rogue.post("ssh/logins", {"email": "carol@example.com", "login": "probe"})
    assert (third.status_code, third.json()) == (202, answers[0].json())
    assert get(rogue, "ssh/logins").json() == {"logins": []}
    # An old link for every server refuses every address alike, its owner's included.
    SshLogin.objects.create(login="legacy", server="", user=user_with_totp.user)
    for email in ("alice@example.com", "nobody@example.com"):
        response = rogue.post("ssh/logins", {"email": email, "login": "legacy"})
        assert response.status_code == 409


def test_a_manage_token_cannot_delete_another_servers_link(
    rogue: Api, user_with_totp: Enrolled
) -> None:
    flows.link(user_with_totp.user, "alice", "web1", CLI)
    refused = delete(rogue, "ssh/logins/alice?server=web1")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "other_server"
    assert delete(rogue, "ssh/logins/alice").status_code == 404  # not on web9
    assert SshLogin.objects.filter(login="alice", server="web1").exists()
    assert not SecurityEvent.objects.filter(kind=EventKind.SSH_UNLINKED).exists()


def test_the_customer_is_mailed_when_asked_and_when_linked(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    manager = token(client, "web1", manage=True)
    manager.post("ssh/logins", {"email": "alice@example.com", "login": "deploy"})
    asked = Outbox.objects.get(kind=NoticeKind.SSH_LINK_REQUESTED)
    assert asked.to == "alice@example.com" and asked.params == {"login": "deploy", "server": "web1"}
    text = notices.render(asked).text
    assert "The server web1 asks to link its Unix login deploy" in text
    assert "Nothing is linked until you agree" in text
    # A second request within the hour: listed on the Security page, mailed once.
    manager.post("ssh/logins", {"email": "alice@example.com", "login": "backup"})
    assert SshLinkRequest.objects.count() == 2
    assert Outbox.objects.filter(kind=NoticeKind.SSH_LINK_REQUESTED).count() == 1
    # The operator's link is mailed too.
    call_command("ssh-link", "alice@example.com", "ops", "--server", "web1", stdout=StringIO())
    linked = Outbox.objects.get(kind=NoticeKind.SSH_LINKED)
    assert "The Unix login ops on the server web1 is now linked" in notices.render(linked).text


# -- the customer's answer ---------------------------------------------------------------


def test_confirming_needs_a_recent_reauthentication_then_links_records_and_mails(
    client: Client, api: Api, user_with_totp: Enrolled, frozen_time: float
) -> None:
    alice = user_with_totp.user
    flows.request_link("alice@example.com", "alice", "web1", CLI)
    asked = SshLinkRequest.objects.get()
    url = f"/account/security/ssh/requests/{asked.pk}/"
    client.force_login(alice)  # a session without a recent password
    for response in (client.get(url), client.post(url, {"answer": "link"})):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account:reauth"))
    # The flow asks for itself, whatever guards its page.
    bare = RequestFactory().post(url)
    bare.session = SessionStore()
    with pytest.raises(ReauthRequired):
        flows.confirm_request(bare, alice, asked.pk)
    assert not SshLogin.objects.exists()
    client.logout()

    signed_in(client, user_with_totp)
    section = client.get("/account/security/").content.decode().split('id="ssh"')[1]
    assert url in section and "<code>alice</code> on web1" in section
    page = client.get(url).content.decode()
    assert "The server <strong>web1</strong> asks to link its Unix login" in page
    done = client.post(url, {"answer": "link"})
    assert done.status_code == 302 and done["Location"] == "/account/security/"
    link = SshLogin.objects.get()
    assert (link.login, link.server, link.user_id) == ("alice", "web1", alice.pk)
    assert not SshLinkRequest.objects.exists()
    event = SecurityEvent.objects.get(kind=EventKind.SSH_LINKED)
    assert event.channel == Channel.WEB and event.detail["confirmed"] == "user"
    assert Outbox.objects.filter(kind=NoticeKind.SSH_LINKED, user=alice).count() == 1
    assert api.verify("alice", wrong(user_with_totp)) == {"result": "rejected"}  # in force
    assert client.get(url).status_code == 404  # answered


def test_refusing_removes_the_request_and_links_nothing(
    client: Client, api: Api, user_with_totp: Enrolled, frozen_time: float
) -> None:
    flows.request_link("alice@example.com", "alice", "web1", CLI)
    asked = SshLinkRequest.objects.get()
    signed_in(client, user_with_totp)
    url = f"/account/security/ssh/requests/{asked.pk}/"
    assert client.post(url, {"answer": "maybe"}).status_code == 400  # changes nothing
    assert SshLinkRequest.objects.exists()
    assert client.post(url, {"answer": "refuse"}).status_code == 302
    assert not SshLinkRequest.objects.exists() and not SshLogin.objects.exists()
    assert SecurityEvent.objects.filter(kind=EventKind.SSH_LINK_DECLINED).count() == 1
    assert api.verify("alice", user_with_totp.code()) == {"result": "unknown_login"}


def test_another_accounts_or_an_expired_request_is_not_found(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    User.objects.create_user("bob@example.com", PASSWORD)
    flows.request_link("bob@example.com", "bob", "web1", CLI)
    flows.request_link("alice@example.com", "old", "web1", CLI)
    bobs = SshLinkRequest.objects.get(login="bob")
    old = SshLinkRequest.objects.get(login="old")
    old.created_at = clock.now() - flows.REQUEST_LIFETIME - timedelta(seconds=1)
    old.save()
    signed_in(client, user_with_totp)
    for pk in (bobs.pk, old.pk):
        assert (
            client.post(f"/account/security/ssh/requests/{pk}/", {"answer": "link"}).status_code
            == 404
        )
    assert not SshLogin.objects.exists()
    assert "ssh-requests" not in client.get("/account/security/").content.decode()
    # Asked again, an expired request is new (and mailed again, an hour on); any other
    # expired request goes then.
    SshLinkRequest.objects.filter(login="bob").update(created_at=old.created_at)
    with clock.frozen(frozen_time + 3600):
        flows.request_link("alice@example.com", "old", "web1", CLI)
        assert SshLinkRequest.objects.get(login="old").created_at == clock.now()
    assert not SshLinkRequest.objects.filter(login="bob").exists()


def test_the_first_account_to_confirm_gets_the_login(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    bob = User.objects.create_user("bob@example.com", PASSWORD)
    flows.request_link("bob@example.com", "shared", "web1", CLI)
    flows.request_link("alice@example.com", "shared", "web1", CLI)
    bobs = SshLinkRequest.objects.get(user=bob)
    signed_in(client, user_with_totp)
    alices = SshLinkRequest.objects.get(user=user_with_totp.user)
    assert client.post(f"/account/security/ssh/requests/{alices.pk}/", {"answer": "link"})
    assert SshLogin.objects.get().user == user_with_totp.user
    # Bob's request is answered by Alice's link: gone, nothing taken over.
    assert not SshLinkRequest.objects.filter(pk=bobs.pk).exists()
    with pytest.raises(flows.ApiError):
        flows.request_link("bob@example.com", "shared", "web1", CLI)


def test_one_server_has_a_bounded_share_of_an_accounts_requests(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    for n in range(flows.MAX_REQUESTS_PER_SERVER + 3):
        flows.request_link("alice@example.com", f"login{n}", "web9", CLI)
    flows.request_link("alice@example.com", "login0", "web1", CLI)
    assert SshLinkRequest.objects.filter(server="web9").count() == flows.MAX_REQUESTS_PER_SERVER
    assert SshLinkRequest.objects.filter(server="web1").count() == 1


def kinds(user: User) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user).values_list("kind", flat=True))


def test_the_operator_lists_every_servers_links_and_requests(user_with_totp: Enrolled) -> None:
    flows.link(user_with_totp.user, "alice", "web1", CLI)
    SshLogin.objects.create(login="legacy", server="", user=user_with_totp.user)
    flows.request_link("alice@example.com", "ops", "web9", CLI)
    out = StringIO()
    call_command("ssh-links", stdout=out)
    assert out.getvalue().splitlines() == [
        "alice\tweb1\talice@example.com\tlinked",
        "legacy\t*\talice@example.com\told",
        "ops\tweb9\talice@example.com\tasked",
    ]
    only = StringIO()
    call_command("ssh-links", "--server", "", stdout=only)
    assert only.getvalue() == "legacy\t*\talice@example.com\told\n"
