"""What a team grant gives over SSH (issue 27): a member logs in as a granted login with
their own certificate, whose strength principals come from the session that approved it;
``principals_for`` names the member at the strength the grant's rule asks, and stops at
once when the grant ends. (The real sshd runs these in tests/ssh/central.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client as Browser

from keyfob.accounts.models import Factor, User
from keyfob.api import sshca
from keyfob.core import clock
from keyfob.oidc.models import Client
from keyfob.teams.models import Grant, Rule
from keyfob.twofactor import flows as twofactor
from tests.api.conftest import Api
from tests.api.test_ssh_certificates_endpoint import post
from tests.api.test_sshca import CONTEXT, inspect, user_key
from tests.conftest import Enrolled, enrol, make_user, prove_for_client
from tests.oidc.device_client import DeviceClient, DjangoTransport


@pytest.fixture
def member(db: None) -> User:
    user = make_user("dev@example.com")
    enrol(user)
    return user


def give(owner: User, member: User, rule: str, **fields: Any) -> Grant:
    fields.setdefault("logins", [["alice", "web1"]])
    return Grant.objects.create(owner=owner, member=member, rule=rule, **fields)


def principals(api: Api, login: str = "alice") -> list[str]:
    response = api.post("ssh/principals", {"login": login})
    assert response.status_code == 200, response.content
    return list(response.json()["principals"])


@pytest.mark.parametrize(
    ("rule", "suffix"), [(Rule.NONE, ""), (Rule.TWO_FACTOR, "-mfa"), (Rule.KEY, "-key")]
)
def test_a_member_is_named_at_the_strength_the_rule_asks(
    api: Api, linked: Enrolled, member: User, rule: str, suffix: str
) -> None:
    owner = linked.user
    give(owner, member, rule)
    assert principals(api) == [f"keyfob-{owner.pk}", f"keyfob-{member.pk}{suffix}"]


def test_grace_ended_other_logins_and_2fa(api: Api, linked: Enrolled, member: User) -> None:
    owner = linked.user
    grant = give(owner, member, Rule.KEY, grace_until=clock.now() + timedelta(days=2))
    assert principals(api) == [f"keyfob-{owner.pk}", f"keyfob-{member.pk}"]  # in grace
    Grant.objects.filter(pk=grant.pk).update(grace_until=clock.now() - timedelta(seconds=1))
    assert principals(api) == [f"keyfob-{owner.pk}", f"keyfob-{member.pk}-key"]
    # Another login of the owner's, not granted: the owner only.
    from keyfob.api import flows

    flows.link(owner, "deploy", "web1", CONTEXT)
    assert principals(api, "deploy") == [f"keyfob-{owner.pk}"]
    # The member's 2FA turned off by support: their certificates open nothing.
    twofactor.disable_by_support(member, CONTEXT)
    assert principals(api) == [f"keyfob-{owner.pk}"]
    enrol(member)
    assert principals(api) == [f"keyfob-{owner.pk}", f"keyfob-{member.pk}-key"]
    # The owner's own 2FA off: the owner's principal goes, the member's stays.
    twofactor.disable_by_support(owner, CONTEXT)
    assert principals(api) == [f"keyfob-{member.pk}-key"]
    # The grant ended: at once, nothing for the member.
    Grant.objects.filter(pk=grant.pk).update(ended_at=clock.now())
    assert principals(api) == []


def test_a_closed_owner_or_member_opens_nothing(api: Api, linked: Enrolled, member: User) -> None:
    owner = linked.user
    give(owner, member, Rule.NONE)
    User.objects.filter(pk=member.pk).update(is_active=False)
    assert principals(api) == [f"keyfob-{owner.pk}"]
    User.objects.filter(pk=member.pk).update(is_active=True)
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert principals(api) == []


def test_a_grant_of_another_server_or_unlinked_login_gives_nothing(
    api: Api, linked: Enrolled, member: User
) -> None:
    owner = linked.user
    give(owner, member, Rule.NONE, logins=[["alice", "web2"], "junk", ["bob", "web1"]])
    assert principals(api) == [f"keyfob-{owner.pk}"]
    assert principals(api, "bob") == []  # not a link of the owner's


@pytest.mark.parametrize(
    ("factors", "suffixes"),
    [
        ((), [""]),
        ((Factor.PASSWORD,), [""]),
        ((Factor.PASSWORD, Factor.APP_CODE), ["", "-mfa"]),
        ((Factor.PASSWORD, Factor.TRUSTED_BROWSER), [""]),
        ((Factor.PASSWORD, Factor.SECURITY_KEY), ["", "-mfa", "-key"]),
        ((Factor.PASSKEY,), ["", "-mfa", "-key"]),
    ],
)
def test_a_certificate_carries_the_strength_of_its_approval(
    tmp_path: Path, member: User, factors: tuple[str, ...], suffixes: list[str]
) -> None:
    line = user_key(tmp_path).with_suffix(".pub").read_text()
    issued = sshca.issue_certificate(member, line, CONTEXT, factors=factors)
    wanted = [f"keyfob-{member.pk}{suffix}" for suffix in suffixes]
    assert issued.row.principals == wanted
    shown = inspect(tmp_path, issued.certificate)
    listed = shown.split("Principals:")[1].split("Critical Options:")[0].split()
    assert listed == wanted


def device_certificate(tmp_path: Path, member: User, *factors: str) -> dict[str, Any]:
    """keyfob-ssh login's path through the test client: the device grant approved by a
    session of ``member`` that proved ``factors``, then the certificate endpoint."""
    cli = Client.objects.get(client_id="keyfob-ssh")
    transport = DjangoTransport(Browser(raise_request_exception=False))
    tool = DeviceClient(transport, cli.client_id, scope="openid ssh")
    started = tool.start()
    assert started.status == 200, started.body
    code = started.body["user_code"]
    browser = Browser(raise_request_exception=False)
    browser.force_login(member)
    prove_for_client(browser, member, *factors)
    assert browser.post("/oidc/device/", {"user_code": code}).status_code == 302
    done = browser.post(f"/oidc/device/confirm/{cli.client_id}/{code}/", {"action": "approve"})
    assert done.status_code == 302 and "/oidc/device/status/" in done["Location"], done
    got = tool.poll()
    assert got.status == 200, got.body
    line = user_key(tmp_path, name=f"id{len(factors)}{factors[-1]}").with_suffix(".pub")
    answer = post({"public_key": line.read_text()}, got.body["access_token"])
    assert answer.status_code == 200, answer.content
    body = dict(answer.json())
    body["shown"] = inspect(tmp_path, body["certificate"])
    return body


def test_the_endpoint_learns_the_approval_strength_from_the_token(
    tmp_path: Path, api: Api, linked: Enrolled, member: User
) -> None:
    """Through the site's hook (api.views.TOKEN_FACTORS ← oidc.flows.token_factors)."""
    give(linked.user, member, Rule.KEY)
    with_code = device_certificate(tmp_path, member, Factor.APP_CODE)
    assert f"keyfob-{member.pk}-mfa" in with_code["shown"]
    assert f"keyfob-{member.pk}-key" not in with_code["shown"]
    assert with_code["logins"] == []  # the grant waits for a key
    with_key = device_certificate(tmp_path, member, Factor.SECURITY_KEY)
    assert f"keyfob-{member.pk}-key" in with_key["shown"]
    assert with_key["logins"] == ["alice@web1"]
    assert f"keyfob-{member.pk}-key" in principals(api)
