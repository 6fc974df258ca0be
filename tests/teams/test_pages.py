"""Account → Team through the test client: what each side sees, and junk in every field
(a clear message, nothing changed, never a 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from keyfob.accounts.models import Factor, User
from keyfob.audit.models import Outbox, SecurityEvent
from keyfob.teams import flows
from keyfob.teams.models import Grant, Invitation, Rule, TeamSettings
from tests.conftest import enrol, prove_for_client
from tests.teams.conftest import invitation_code, invite, plain_request

pytestmark = pytest.mark.django_db

JUNK = [
    "",
    " ",
    "x" * 5000,
    "\x00",
    "<script>alert(1)</script>",
    "١٢٣٤٥٦٧٨",
    "-1",
    "1e9",
    "🙂",
    "' OR 1=1 --",
]


def signed_in(user: User, *factors: str) -> Client:
    client = Client()
    client.force_login(user)
    prove_for_client(client, user, *(factors or [Factor.SECURITY_KEY]))
    return client


def state() -> tuple[Any, ...]:
    return (
        list(Invitation.objects.values()),
        list(Grant.objects.values()),
        list(TeamSettings.objects.values()),
        Outbox.objects.count(),
        SecurityEvent.objects.count(),
    )


def joined(owner: User, member: User, **terms: Any) -> Grant:
    invitation = invite(owner, email=member.email, **terms)
    return flows.accept(plain_request(member), invitation.pk, invitation_code(member.email))


def test_the_team_page_is_in_the_account_navigation(owner: User) -> None:
    page = signed_in(owner).get("/account/team/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'href="/account/team/" aria-current="page"' in text
    assert "Invite someone" in text and "Nobody acts for your account." in text


def test_the_owner_invites_from_the_page(owner: User, member: User) -> None:
    client = signed_in(owner)
    page = client.get("/account/team/invite/").content.decode()
    assert "deploy @ web1" in page and 'value="technical"' in page
    answer = client.post(
        "/account/team/invite/",
        {
            "email": "max@example.com",
            "rights": ["technical", "dns"],
            "logins": [json.dumps(["deploy", "web1"])],
            "rule": Rule.KEY,
            "grace_days": "3",
        },
    )
    assert answer.status_code == 302 and answer["Location"] == "/account/team/"
    invitation = Invitation.objects.get()
    assert (invitation.rights, invitation.logins, invitation.rule, invitation.grace_days) == (
        ["technical", "dns"],
        [["deploy", "web1"]],
        Rule.KEY,
        3,
    )
    assert "max@example.com" in client.get("/account/team/").content.decode()


def test_inviting_asks_to_confirm_it_is_you(owner: User) -> None:
    client = Client()
    client.force_login(owner)
    answer = client.post(
        "/account/team/invite/",
        {"email": "max@example.com", "rule": Rule.NONE, "grace_days": "0"},
    )
    assert answer.status_code == 302 and answer["Location"].startswith("/account/confirm/")
    assert not Invitation.objects.exists()


INVITE_FIELDS = ["email", "rights", "logins", "rule", "grace_days"]


@pytest.mark.parametrize("field", INVITE_FIELDS)
@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_in_each_invite_field_changes_nothing(owner: User, field: str, junk: str) -> None:
    client = signed_in(owner)
    good: dict[str, Any] = {
        "email": "max@example.com",
        "rights": ["technical"],
        "logins": [json.dumps(["deploy", "web1"])],
        "rule": Rule.TWO_FACTOR,
        "grace_days": "0",
    }
    before = state()
    answer = client.post("/account/team/invite/", {**good, field: junk})
    assert answer.status_code == 200, (field, junk)
    assert "There is a problem" in answer.content.decode()
    assert state() == before


@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_codes_change_nothing(owner: User, member: User, junk: str) -> None:
    invitation = invite(owner)
    client = signed_in(member)
    before = state()
    answer = client.post(
        f"/account/team/invitations/{invitation.pk}/accept/", {f"i{invitation.pk}-code": junk}
    )
    assert answer.status_code == 200
    assert "There is a problem" in answer.content.decode()
    assert state() == before


@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
@pytest.mark.parametrize("field", ["rule", "grace_days"])
def test_junk_defaults_change_nothing(owner: User, field: str, junk: str) -> None:
    client = signed_in(owner)
    before = state()
    good = {"rule": Rule.KEY, "grace_days": "5"}
    answer = client.post("/account/team/defaults/", {**good, field: junk}, follow=True)
    assert answer.status_code == 200
    assert state() == before


@pytest.mark.parametrize(
    "path",
    [
        "/account/team/members/{g}/",
        "/account/team/members/{g}/remove/",
        "/account/team/invitations/{i}/withdraw/",
        "/account/team/invitations/{i}/accept/",
        "/account/team/invitations/{i}/decline/",
        "/account/team/acting/{g}/leave/",
    ],
)
@pytest.mark.parametrize("pk", ["999999", "0", "99999999999999999999"])
def test_unknown_ids_change_nothing(owner: User, member: User, path: str, pk: str) -> None:
    joined(owner, member)
    invite(owner, email="other@example.com")
    client = signed_in(owner)
    before = state()
    answer = client.post(path.format(g=pk, i=pk), {}, follow=True)
    assert answer.status_code in (200, 404)
    assert state() == before


def test_a_member_cannot_raise_their_own_rights_from_the_page(owner: User, member: User) -> None:
    grant = joined(owner, member, rights=["technical"])
    client = signed_in(member)
    before = state()
    answer = client.post(
        f"/account/team/members/{grant.pk}/",
        {"rights": ["technical", "billing", "dns", "mail"], "rule": Rule.NONE},
        follow=True,
    )
    assert "This is no longer there" in answer.content.decode()
    assert client.post(f"/account/team/members/{grant.pk}/remove/", follow=True).status_code == 200
    assert state() == before


def test_the_owner_sees_compliance_never_authenticators(owner: User, member: User) -> None:
    enrolled = enrol(member, name="Max's phone")
    joined(owner, member, rule=Rule.KEY)
    page = signed_in(owner).get("/account/team/").content.decode()
    assert "max@example.com" in page
    assert "Max&#x27;s phone" not in page and "Max's phone" not in page
    assert enrolled.b32 not in page
    assert "Security key or passkey required" in page


def test_the_owner_changes_a_grant_from_the_page(owner: User, member: User) -> None:
    grant = joined(owner, member)
    client = signed_in(owner)
    answer = client.post(
        f"/account/team/members/{grant.pk}/",
        {"rights": ["mail"], "logins": [json.dumps(["backup", "db1"])], "rule": Rule.NONE},
    )
    assert answer.status_code == 302
    grant.refresh_from_db()
    assert (grant.rights, grant.logins, grant.rule) == (["mail"], [["backup", "db1"]], Rule.NONE)


def test_the_member_sees_whose_account_and_what_waits(owner: User, member: User) -> None:
    enrol(member)
    joined(owner, member, rule=Rule.KEY)
    page = signed_in(member, Factor.APP_CODE).get("/account/team/").content.decode()
    assert "Accounts you act for" in page
    assert "The account of Olivia &lt;olivia@example.com&gt;" in page
    assert "This grant waits for a security key." in page
    assert "Add a security key" in page  # no key yet: the way to comply
    # The same grant counts in a session signed in with a key.
    page = signed_in(member, Factor.SECURITY_KEY).get("/account/team/").content.decode()
    assert "Counts in this session." in page


def test_a_two_factor_grant_asks_to_turn_it_on(owner: User, member: User) -> None:
    joined(owner, member, rule=Rule.TWO_FACTOR)
    client = Client()
    client.force_login(member)
    prove_for_client(client, member, Factor.PASSWORD)
    page = client.get("/account/team/").content.decode()
    assert "This grant waits for two-factor authentication." in page
    assert 'href="/account/security/setup/"' in page


def test_the_invitee_accepts_on_the_page_with_the_code_in_a_form(owner: User, member: User) -> None:
    invitation = invite(owner)
    client = signed_in(member)
    page = client.get("/account/team/").content.decode()
    assert "Invitations for you" in page
    assert f'action="/account/team/invitations/{invitation.pk}/accept/"' in page
    answer = client.post(
        f"/account/team/invitations/{invitation.pk}/accept/",
        {f"i{invitation.pk}-code": "0000 0000"},
    )
    assert "That is not the invitation&#x27;s code. 4 tries left." in answer.content.decode()
    code = invitation_code(member.email)
    answer = client.post(
        f"/account/team/invitations/{invitation.pk}/accept/",
        {f"i{invitation.pk}-code": f"{code[:4]} {code[4:]}"},
    )
    assert answer.status_code == 302
    assert Grant.objects.filter(owner=owner, member=member, ended_at=None).exists()


def test_another_address_cannot_open_the_invitation(owner: User, member: User) -> None:
    invitation = invite(owner)
    from tests.conftest import make_user

    other = make_user("eve@example.com")
    client = signed_in(other)
    code = invitation_code(member.email)
    before = state()
    answer = client.post(
        f"/account/team/invitations/{invitation.pk}/accept/",
        {f"i{invitation.pk}-code": code},
        follow=True,
    )
    assert "This invitation no longer works" in answer.content.decode()
    assert state() == before
