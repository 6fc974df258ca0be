"""POST /api/v1/ssh/verify and /ssh/check: the account's own rules, shared with the portal."""

from __future__ import annotations

import pytest
from django.test import Client

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import ServerToken
from keyfob.audit.events import Context
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.core import clock, throttle
from keyfob.core.models import Throttle
from keyfob.twofactor import flows as twofactor
from tests.api.conftest import Api
from tests.conftest import Enrolled

WEB = Context(channel=Channel.WEB, address="192.0.2.1")


def wrong(enrolled: Enrolled) -> str:
    now = clock.time()
    valid = {enrolled.code(now + 30 * k) for k in range(-5, 6)}
    return next(c for c in ("000000", "123456", "654321", "999999") if c not in valid)


def kinds(user: User) -> list[str]:
    return list(SecurityEvent.objects.filter(user=user).values_list("kind", flat=True))


def test_right_code_is_accepted_and_recorded_on_the_ssh_channel(
    api: Api, linked: Enrolled, frozen_time: float
) -> None:
    assert api.verify("alice", linked.code(), client_address="198.51.100.7") == {
        "result": "accepted"
    }
    event = SecurityEvent.objects.get(user=linked.user, kind=EventKind.SIGNIN_OK)
    assert event.channel == Channel.SSH
    assert event.user_agent == "ssh:web1"
    # Issue 15: the address Keyfob saw is the server's; the client's is what the server
    # says, kept beside it as such (before the fix it replaced the server's address).
    assert event.address == "127.0.0.1"
    assert event.detail == {
        "login": "alice",
        "server": "web1",
        "factor": "code",
        "reported_address": "198.51.100.7",
        # Issue 17: which of the account's authenticator apps the code came from.
        "authenticator": "Authenticator app",
    }


def test_a_reported_address_is_shown_as_the_servers_word(
    client: Client, api: Api, linked: Enrolled, frozen_time: float
) -> None:
    """A server can write any client_address: the activity says whose word it is, on
    every event of the attempt, beside the address the request came from."""
    api.verify("alice", wrong(linked), client_address="203.0.113.66")
    event = SecurityEvent.objects.get(user=linked.user, kind=EventKind.CODE_WRONG)
    assert (event.address, event.detail["reported_address"]) == ("127.0.0.1", "203.0.113.66")
    client.force_login(linked.user)
    activity = client.get("/account/security/").content.decode().split('id="activity"')[1]
    row = next(r for r in activity.split("<tr>") if "203.0.113.66" in r)
    assert "127.0.0.1" in row and "client 203.0.113.66, as the server reports it" in row


def test_without_client_address_the_servers_address_is_recorded(
    api: Api, linked: Enrolled, frozen_time: float
) -> None:
    response = api.post("ssh/verify", {"login": "alice", "code": linked.code()}, **{})
    assert response.json() == {"result": "accepted"}
    assert SecurityEvent.objects.get(kind=EventKind.SIGNIN_OK).address == "127.0.0.1"


def test_a_code_is_single_use_across_ssh_and_the_portal(
    api: Api, linked: Enrolled, frozen_time: float
) -> None:
    code = linked.code()
    assert api.verify("alice", code)["result"] == "accepted"
    assert api.verify("alice", code)["result"] == "rejected"
    with pytest.raises(otp.CodeReused):
        twofactor.verify_code(linked.user, code, WEB)
    # And the other way round: used on the portal, refused over SSH.
    later = linked.code(frozen_time + 30)
    with clock.frozen(frozen_time + 30):
        twofactor.verify_code(linked.user, later, WEB)
        assert api.verify("alice", later)["result"] == "rejected"
    assert EventKind.CODE_REUSED in kinds(linked.user)


def test_wrong_codes_over_ssh_throttle_the_portal_too(
    api: Api, linked: Enrolled, frozen_time: float
) -> None:
    bad = wrong(linked)
    for _ in range(throttle.CODE.free):
        assert api.verify("alice", bad) == {"result": "rejected"}
    answer = api.verify("alice", linked.code())
    assert answer["result"] == "throttled"
    assert answer["retry_after"] == 30
    with pytest.raises(otp.Throttled):
        twofactor.verify_code(linked.user, linked.code(), WEB)
    events = SecurityEvent.objects.filter(user=linked.user, kind=EventKind.CODE_WRONG)
    assert events.count() == throttle.CODE.free
    assert {e.channel for e in events} == {Channel.SSH}


def test_wrong_codes_on_the_portal_throttle_ssh(
    api: Api, linked: Enrolled, frozen_time: float
) -> None:
    for _ in range(throttle.CODE.free):
        with pytest.raises(otp.InvalidCode):
            twofactor.verify_code(linked.user, wrong(linked), WEB)
    assert api.verify("alice", linked.code())["result"] == "throttled"


def test_recovery_code_over_ssh_works_once(api: Api, linked: Enrolled, frozen_time: float) -> None:
    codes = twofactor.replace_recovery_codes(linked.user)
    typed = codes[0].lower().replace("-", " ")
    assert api.verify("alice", typed) == {"result": "accepted"}
    assert api.verify("alice", codes[0]) == {"result": "rejected"}
    assert twofactor.recovery_codes_left(linked.user) == len(codes) - 1
    assert EventKind.RECOVERY_USED in kinds(linked.user)
    assert SecurityEvent.objects.get(kind=EventKind.SIGNIN_OK).detail["factor"] == "recovery"


def test_not_enrolled_unknown_login_and_inactive(api: Api, linked: Enrolled) -> None:
    assert api.verify("bob", "123456") == {"result": "unknown_login"}
    assert api.post("ssh/check", {"login": "alice"}).json() == {"result": "code_required"}
    twofactor.disable_by_support(linked.user, Context(channel=Channel.WEB))
    assert api.verify("alice", "123456") == {"result": "not_enrolled"}
    assert api.verify("alice", "ABCD-EFGH-JKMN-PQRS") == {"result": "not_enrolled"}
    assert api.post("ssh/check", {"login": "alice"}).json() == {"result": "not_enrolled"}
    assert api.post("ssh/check", {"login": "bob"}).json() == {"result": "unknown_login"}
    User.objects.filter(pk=linked.user.pk).update(is_active=False)
    assert api.verify("alice", "123456") == {"result": "unknown_login"}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer nope",
        "Basic dXNlcjpwYXNz",
        "Bearer kfs_aaaaaaaaaaaaaaaa_" + "A" * 43,
    ],
)
def test_no_valid_token_gets_401_and_changes_nothing(
    client: Client, linked: Enrolled, frozen_time: float, header: str | None
) -> None:
    headers = {"Authorization": header} if header is not None else {}
    before = (SecurityEvent.objects.count(), Throttle.objects.count())
    response = client.post(
        "/api/v1/ssh/verify",
        {"login": "alice", "code": linked.code()},
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert (SecurityEvent.objects.count(), Throttle.objects.count()) == before


@pytest.mark.parametrize("body", [b"{", b"[]", {"login": "al ice", "code": "1"}, {"code": "1"}])
def test_a_bad_body_is_401_without_a_valid_token_and_400_with_one(
    api: Api, linked: Enrolled, body: object
) -> None:
    # The verify view reads its body before the token (to find both in one query); the
    # token still decides first.
    before = SecurityEvent.objects.count()
    forged = Api(
        api.client, api.token[:-4] + ("AAAA" if api.token[-4:] != "AAAA" else "BBBB"), api.server
    )
    assert forged.post("ssh/verify", body).status_code == 401
    assert api.post("ssh/verify", body).status_code == 400
    assert SecurityEvent.objects.count() == before


def test_a_right_key_with_a_wrong_secret_or_a_revoked_token_gets_401(
    api: Api, linked: Enrolled, frozen_time: float
) -> None:
    forged = api.token[:-4] + ("AAAA" if not api.token.endswith("AAAA") else "BBBB")
    assert Api(api.client, forged, api.server).post("ssh/verify", {}).status_code == 401
    assert flows.revoke_token("web1")
    response = api.post("ssh/verify", {"login": "alice", "code": linked.code()})
    assert response.status_code == 401
    assert not SecurityEvent.objects.filter(kind=EventKind.SIGNIN_OK).exists()


def test_last_used_is_kept_without_a_write_per_request(api: Api, linked: Enrolled) -> None:
    assert ServerToken.objects.get().last_used_at is None
    api.verify("alice", "000000")
    first = ServerToken.objects.get().last_used_at
    assert first is not None
    api.verify("alice", "000000")
    assert ServerToken.objects.get().last_used_at == first
