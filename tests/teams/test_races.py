"""One invitation accepted from two sessions at once makes one membership (real PostgreSQL
when KEYFOB_TEST_DATABASE_URL names one; SQLite otherwise)."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob.accounts.models import Factor
from keyfob.teams.models import Grant, Invitation
from tests.audit.test_concurrency import in_threads
from tests.conftest import make_user, prove_for_client
from tests.teams.conftest import invitation_code, invite

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.mark.parametrize("sessions", [2, 6])
def test_one_invitation_accepted_at_once_makes_one_membership(sessions: int) -> None:
    owner = make_user("olivia@example.com")
    member = make_user("max@example.com")
    invitation = invite(owner, logins=[])
    code = invitation_code(member.email)
    clients = []
    for _ in range(sessions):
        client = Client()
        client.force_login(member)
        prove_for_client(client, member, Factor.SECURITY_KEY)
        clients.append(client)

    def accept(i: int) -> int:
        answer = clients[i].post(
            f"/account/team/invitations/{invitation.pk}/accept/",
            {f"i{invitation.pk}-code": code},
        )
        return answer.status_code

    statuses = in_threads(sessions, accept)
    assert set(statuses) == {302}  # each told, none a 500
    assert Grant.objects.filter(owner=owner, member=member).count() == 1
    invitation = Invitation.objects.get()
    assert invitation.used_at is not None and invitation.accepted_by == member
