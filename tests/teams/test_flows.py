"""Teams' flows: invite, accept, decline, withdraw, change, remove, leave; who may do what;
each change an event on both accounts and a notice to both."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keyfob.accounts.errors import ReauthRequired
from keyfob.accounts.models import User
from keyfob.api.models import SshLogin
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.teams import flows, reminders, rules, signals
from keyfob.teams.models import Grant, Invitation, Rule
from tests.conftest import T0, confirmed_request, enrol, make_user
from tests.teams.conftest import invitation_code, invite, plain_request

pytestmark = pytest.mark.django_db


def kinds(user: User) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user).values_list("kind", flat=True))


def notices_to(email: str) -> list[str]:
    return list(Outbox.objects.filter(to=email).values_list("kind", flat=True))


def test_an_invitation_mails_a_code_and_tells_the_owner(owner: User, member: User) -> None:
    invitation = invite(owner, rights=["billing", "technical"])
    assert invitation.email == "max@example.com"
    assert invitation.rights == ["technical", "billing"]  # in the operator's order
    assert invitation.logins == [["deploy", "web1"]]
    assert len(invitation_code("max@example.com")) == 8
    assert NoticeKind.TEAM_INVITATION in notices_to("max@example.com")
    assert NoticeKind.TEAM_INVITED in notices_to("olivia@example.com")
    assert EventKind.TEAM_INVITED in kinds(owner)
    assert EventKind.TEAM_INVITED in kinds(member)
    assert invitation.expires_at - clock.now() > timedelta(days=6, hours=23)


def test_accepting_makes_a_grant_with_the_invitations_terms(owner: User, member: User) -> None:
    invitation = invite(owner, rule=Rule.KEY, grace_days=3)
    code = invitation_code(member.email)
    grant = flows.accept(plain_request(member), invitation.pk, code)
    assert (grant.owner, grant.member) == (owner, member)
    assert grant.rights == ["technical"] and grant.logins == [["deploy", "web1"]]
    assert grant.rule == Rule.KEY
    assert grant.grace_until is not None
    assert timedelta(days=2, hours=23) < grant.grace_until - clock.now() <= timedelta(days=3)
    assert EventKind.TEAM_JOINED in kinds(owner) and EventKind.TEAM_JOINED in kinds(member)
    assert NoticeKind.TEAM_JOINED in notices_to(owner.email)
    assert NoticeKind.TEAM_JOINED in notices_to(member.email)
    # Single use: the same code again opens nothing.
    with pytest.raises(flows.InvitationLost):
        flows.accept(plain_request(member), invitation.pk, code)
    assert Grant.objects.count() == 1


def test_the_mail_loses_its_code_once_used(owner: User, member: User) -> None:
    invitation = invite(owner)
    flows.accept(plain_request(member), invitation.pk, invitation_code(member.email))
    with pytest.raises(AssertionError):
        invitation_code(member.email)


def test_inviting_needs_a_recent_confirmation(owner: User) -> None:
    with pytest.raises(ReauthRequired):
        flows.invite(plain_request(owner), "max@example.com", ["technical"], [], Rule.NONE, 0)
    assert not Invitation.objects.exists() and not Outbox.objects.exists()


@pytest.mark.parametrize(
    "terms",
    [
        {"rights": ["root"]},
        {"logins": [["root", "web1"]]},
        {"logins": [["deploy"]]},
        {"rule": "sms"},
        {"grace_days": 91},
        {"grace_days": -1},
    ],
    ids=["unknown right", "not the owner's login", "half a login", "bad rule", "91", "-1"],
)
def test_what_the_owner_cannot_give_is_refused(owner: User, terms: dict[str, Any]) -> None:
    with pytest.raises(flows.BadGrant):
        invite(owner, **terms)
    assert not Invitation.objects.exists() and not Outbox.objects.exists()


def test_an_owner_cannot_invite_themselves(owner: User) -> None:
    with pytest.raises(flows.SelfInvite):
        invite(owner, email=" OLIVIA@Example.com ")
    assert not Invitation.objects.exists()


def test_a_member_is_not_invited_twice(owner: User, invitation: Invitation, member: User) -> None:
    flows.accept(plain_request(member), invitation.pk, invitation_code(member.email))
    with pytest.raises(flows.AlreadyMember):
        invite(owner)


def test_an_invitation_is_refused_to_another_address(
    owner: User, invitation: Invitation, member: User
) -> None:
    other = make_user("mallory@example.com")
    code = invitation_code(member.email)
    with pytest.raises(flows.NotYourInvitation):
        flows.accept(plain_request(other), invitation.pk, code)
    invitation.refresh_from_db()
    assert invitation.used_at is None and invitation.tries == 0
    assert not Grant.objects.exists()
    # The address's own account still can.
    flows.accept(plain_request(member), invitation.pk, code)


def test_the_address_is_compared_in_its_normal_form(owner: User) -> None:
    invitation = invite(owner, email="  Max@EXAMPLE.com")
    assert invitation.email == "max@example.com"
    member = make_user("max@example.com")
    flows.accept(plain_request(member), invitation.pk, invitation_code("max@example.com"))


def test_wrong_codes_count_and_the_last_one_ends_the_invitation(
    owner: User, invitation: Invitation, member: User
) -> None:
    code = invitation_code(member.email)
    for left in (4, 3, 2, 1):
        with pytest.raises(flows.WrongInvitationCode) as refused:
            flows.accept(plain_request(member), invitation.pk, "00000000")
        assert refused.value.left == left
    with pytest.raises(flows.InvitationLost):
        flows.accept(plain_request(member), invitation.pk, "00000000")
    with pytest.raises(flows.InvitationLost):
        flows.accept(plain_request(member), invitation.pk, code)


def test_an_address_without_an_account_is_invited_and_joins_once_it_has_one(
    owner: User,
) -> None:
    invitation = invite(owner, email="newcomer@example.com")
    row = Outbox.objects.get(kind=NoticeKind.TEAM_INVITATION)
    assert row.user is None and row.to == "newcomer@example.com"
    assert row.params["has_account"] is False
    from keyfob.audit import notices

    assert "ask Keyfob to make one for newcomer@example.com" in notices.render(row).text
    newcomer = make_user("newcomer@example.com")
    assert [i.pk for i in flows.invitations_for(newcomer)] == [invitation.pk]
    flows.accept(plain_request(newcomer), invitation.pk, invitation_code("newcomer@example.com"))


def test_the_invitation_expires_after_seven_days(owner: User, member: User) -> None:
    with clock.frozen(T0):
        invitation = invite(owner)
        code = invitation_code(member.email)
    with clock.frozen(T0 + 7 * 86400 + 1), pytest.raises(flows.InvitationLost):
        flows.accept(plain_request(member), invitation.pk, code)


def test_withdrawn_and_declined_invitations_stop_working(owner: User, member: User) -> None:
    first = invite(owner)
    code = invitation_code(member.email)
    stranger = make_user("eve@example.com")
    with pytest.raises(flows.NotFound):
        flows.withdraw(plain_request(stranger), first.pk)
    flows.withdraw(plain_request(owner), first.pk)
    with pytest.raises(flows.InvitationLost):
        flows.accept(plain_request(member), first.pk, code)
    assert EventKind.TEAM_INVITE_WITHDRAWN in kinds(member)
    second = invite(owner)
    code = invitation_code(member.email)
    with pytest.raises(flows.NotYourInvitation):
        flows.decline(plain_request(stranger), second.pk)
    flows.decline(plain_request(member), second.pk)
    assert EventKind.TEAM_INVITE_DECLINED in kinds(owner)
    assert NoticeKind.TEAM_INVITE_ENDED in notices_to(owner.email)
    with pytest.raises(flows.InvitationLost):
        flows.accept(plain_request(member), second.pk, code)


def test_a_new_invitation_replaces_the_one_waiting(owner: User, member: User) -> None:
    first = invite(owner)
    old_code = invitation_code(member.email)
    second = invite(owner)
    with pytest.raises(flows.InvitationLost):
        flows.accept(plain_request(member), first.pk, old_code)
    flows.accept(plain_request(member), second.pk, invitation_code(member.email))


def joined(owner: User, member: User, **terms: Any) -> Grant:
    invitation = invite(owner, email=member.email, **terms)
    return flows.accept(plain_request(member), invitation.pk, invitation_code(member.email))


def test_the_owner_changes_a_grant_and_the_doors_hear_of_it(owner: User, member: User) -> None:
    grant = joined(owner, member)
    heard: list[Grant] = []

    def listener(sender: object, grant: Grant, **kwargs: Any) -> None:
        heard.append(grant)

    signals.grant_changed.connect(listener)
    try:
        flows.change_grant(
            confirmed_request(owner), grant.pk, ["dns"], [["backup", "db1"]], Rule.KEY
        )
    finally:
        signals.grant_changed.disconnect(listener)
    grant.refresh_from_db()
    assert (grant.rights, grant.logins, grant.rule) == (["dns"], [["backup", "db1"]], Rule.KEY)
    assert [g.pk for g in heard] == [grant.pk]
    assert EventKind.TEAM_GRANT_CHANGED in kinds(owner)
    assert EventKind.TEAM_GRANT_CHANGED in kinds(member)
    assert NoticeKind.TEAM_GRANT_CHANGED in notices_to(member.email)
    with pytest.raises(ReauthRequired):
        flows.change_grant(plain_request(owner), grant.pk, [], [], Rule.NONE)


def test_a_member_cannot_change_their_own_grant(owner: User, member: User) -> None:
    grant = joined(owner, member, rights=["technical"])
    with pytest.raises(flows.NotFound):
        flows.change_grant(confirmed_request(member), grant.pk, ["billing"], [], Rule.NONE)
    with pytest.raises(flows.NotFound):
        flows.remove(confirmed_request(member), grant.pk)
    grant.refresh_from_db()
    assert grant.rights == ["technical"] and grant.ended_at is None


def test_a_members_invitation_is_for_their_own_account_only(owner: User, member: User) -> None:
    joined(owner, member)
    SshLogin.objects.create(login="max", server="web9", user=member)
    invitation = invite(member, email="friend@example.com", logins=[["max", "web9"]])
    assert invitation.owner == member
    with pytest.raises(flows.BadGrant):  # the owner's logins are not the member's to give
        invite(member, email="friend@example.com", logins=[["deploy", "web1"]])


@pytest.mark.parametrize("how", ["remove", "leave"])
def test_removal_and_leaving_end_the_grant_at_once(owner: User, member: User, how: str) -> None:
    grant = joined(owner, member)
    heard: list[Grant] = []

    def listener(sender: object, grant: Grant, **kwargs: Any) -> None:
        heard.append(grant)

    signals.grant_ended.connect(listener)
    try:
        if how == "remove":
            flows.remove(confirmed_request(owner), grant.pk)
        else:
            flows.leave(plain_request(member), grant.pk)
    finally:
        signals.grant_ended.disconnect(listener)
    grant.refresh_from_db()
    assert grant.ended_at is not None and [g.pk for g in heard] == [grant.pk]
    kind = EventKind.TEAM_REMOVED if how == "remove" else EventKind.TEAM_LEFT
    assert kind in kinds(owner) and kind in kinds(member)
    assert NoticeKind.TEAM_ENDED in notices_to(owner.email)
    assert NoticeKind.TEAM_ENDED in notices_to(member.email)
    assert rules.split(member, {"security_key"}) == ([], [])
    with pytest.raises(flows.NotFound):
        flows.leave(plain_request(member), grant.pk)
    # A new invitation makes a new membership (the old grant is kept, ended).
    joined(owner, member)
    assert Grant.objects.filter(owner=owner, member=member).count() == 2


def test_the_owners_defaults(owner: User) -> None:
    assert flows.defaults_of(owner).default_rule == Rule.TWO_FACTOR
    flows.set_defaults(confirmed_request(owner), Rule.KEY, 14)
    assert (flows.defaults_of(owner).default_rule, flows.defaults_of(owner).grace_days) == (
        Rule.KEY,
        14,
    )
    with pytest.raises(flows.BadGrant):
        flows.set_defaults(confirmed_request(owner), "x", 1)
    assert EventKind.TEAM_DEFAULTS in kinds(owner)


def test_grace_reminders_once_a_day_and_a_last_one(owner: User, member: User) -> None:
    with clock.frozen(T0):
        joined(owner, member, rule=Rule.TWO_FACTOR, grace_days=2)

    def reminders_sent(at: float) -> int:
        with clock.frozen(at):
            reminders.send_reminders(100)
        return Outbox.objects.filter(kind=NoticeKind.TEAM_GRACE).count()

    assert reminders_sent(T0 + 60) == 0  # the joining notice told today
    assert reminders_sent(T0 + 86400 + 60) == 1
    assert reminders_sent(T0 + 86400 + 120) == 1  # at most one a day
    assert reminders_sent(T0 + 2 * 86400 + 60) == 2  # the grace period is over: the last one
    last = Outbox.objects.filter(kind=NoticeKind.TEAM_GRACE).order_by("-pk")[0]
    assert last.params["ended"] is True
    assert reminders_sent(T0 + 5 * 86400) == 2  # and no more


def test_no_reminder_once_the_account_can_meet_the_rule(owner: User, member: User) -> None:
    with clock.frozen(T0):
        joined(owner, member, rule=Rule.TWO_FACTOR, grace_days=5)
    enrol(member)
    with clock.frozen(T0 + 86400 + 60):
        reminders.send_reminders(100)
    assert not Outbox.objects.filter(kind=NoticeKind.TEAM_GRACE).exists()
