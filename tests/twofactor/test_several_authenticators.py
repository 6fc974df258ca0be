"""Issue 17, stage 1: several named authenticator apps per account.

Each test here failed before the change (one authenticator per account: a second one could
not be added, a code of any but the first matched nothing, nothing listed or removed them).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.otp import CodeReused, InvalidCode, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.models import Authenticator, RecoveryCode
from tests.conftest import Enrolled, confirmed_request, enrol, make_user, password_step

pytestmark = pytest.mark.django_db
CTX = Context(address="192.0.2.1", user_agent="test")


@pytest.fixture
def two_apps(user_with_totp: Enrolled) -> tuple[Enrolled, Enrolled]:
    """Alice's first app (unnamed, as one carried over) and her new phone."""
    return user_with_totp, enrol(user_with_totp.user, name="New phone")


def app(user_id: int, name: str) -> Authenticator:
    return Authenticator.objects.get(user_id=user_id, name=name)


def signed_in_with_code(client: Client, enrolled: Enrolled) -> Client:
    assert password_step(client).status_code == 302
    response = client.post("/login/code/", {"code": enrolled.code()})
    assert response.status_code == 302 and not response["Location"].startswith("/login")
    return client


def test_adding_an_app_keeps_2fa_on_and_the_recovery_codes(user_with_totp: Enrolled) -> None:
    user = user_with_totp.user
    digests = set(RecoveryCode.objects.filter(user=user).values_list("digest", flat=True))
    second = enrol(user, name="New phone")
    assert second.recovery_codes == []  # made with the first only
    assert set(RecoveryCode.objects.filter(user=user).values_list("digest", flat=True)) == digests
    assert Authenticator.objects.filter(user=user, confirmed_at__isnull=False).count() == 2
    added = SecurityEvent.objects.get(user=user, kind=EventKind.AUTHENTICATOR_ADDED)
    assert added.detail["name"] == "New phone"
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.TWOFACTOR_ON).count() == 1
    notice = Outbox.objects.get(user=user, kind=NoticeKind.AUTHENTICATOR_ADDED)
    assert notice.params == {"name": "New phone"}


def test_a_code_matches_whichever_app_and_each_is_single_use(
    two_apps: tuple[Enrolled, Enrolled], frozen_time: float
) -> None:
    old, new = two_apps
    user = old.user
    assert flows.verify_code(user, new.code(), CTX).name == "New phone"
    with pytest.raises(CodeReused):
        flows.verify_code(user, new.code(), CTX)
    # The other app's code of the same step is its own: still unused.
    assert flows.verify_code(user, old.code(), CTX).label == "Authenticator app"
    with pytest.raises(CodeReused):
        flows.verify_code(user, old.code(), CTX)
    assert app(user.pk, "New phone").last_used_at == clock.now()


def test_one_throttle_across_every_app(
    two_apps: tuple[Enrolled, Enrolled], frozen_time: float
) -> None:
    old, new = two_apps
    wrong = next(c for c in ("000000", "111111", "222222") if c not in (old.code(), new.code()))
    refused_as_wrong = 0
    with pytest.raises(Throttled):  # more apps must not mean more guesses
        while refused_as_wrong < 20:
            try:
                flows.verify_code(old.user, wrong, CTX)
            except InvalidCode:
                refused_as_wrong += 1
    with pytest.raises(Throttled):
        flows.verify_code(old.user, new.code(), CTX)


def test_the_sign_in_activity_says_which_app(
    client: Client, two_apps: tuple[Enrolled, Enrolled], frozen_time: float
) -> None:
    old, new = two_apps
    signed_in_with_code(client, new)
    event = SecurityEvent.objects.filter(user=old.user, kind=EventKind.SIGNIN_OK).latest("pk")
    assert event.detail == {"second_factor": "code", "authenticator": "New phone"}
    page = client.get("/account/security/").content.decode()
    assert "with “New phone”" in page


def test_the_security_page_lists_the_apps(
    client: Client, two_apps: tuple[Enrolled, Enrolled], frozen_time: float
) -> None:
    old, _ = two_apps
    page = signed_in_with_code(client, old).get("/account/security/").content.decode()
    assert 'id="authenticators-table"' in page
    assert ">New phone</td>" in page and ">Authenticator app</td>" in page
    assert "Add an authenticator app" in page
    assert page.count("Authenticator app, time-based codes") == 2


def test_adding_an_app_from_the_security_page(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    from keyfob import otp
    from tests.twofactor.test_security_page import setup_secret

    signed_in_with_code(client, user_with_totp)
    page = client.get("/account/security/setup/").content.decode()
    assert "<h1>Add an authenticator app</h1>" in page and 'name="name"' in page
    # A name too long is refused with a message, and makes no key.
    response = client.post("/account/security/setup/", {"kind": "totp", "name": "x" * 61})
    assert "A name has at most 60 characters." in response.content.decode()
    assert not Authenticator.objects.filter(confirmed_at__isnull=True).exists()
    response = client.post("/account/security/setup/", {"kind": "totp", "name": "Tablet"})
    assert response["Location"] == "/account/security/setup/"
    secret = setup_secret(client.get("/account/security/setup/").content.decode())
    response = client.post("/account/security/setup/", {"code": otp.totp(secret, clock.time())})
    assert response["Location"] == "/account/security/"  # no new recovery codes to show
    assert app(user_with_totp.user.pk, "Tablet").is_confirmed
    assert flows.has_2fa(user_with_totp.user)


def test_at_most_ten_apps(client: Client, user_with_totp: Enrolled, frozen_time: float) -> None:
    """Each app adds its window of codes to what one guess can hit: the number is capped."""
    for n in range(2, flows.MAX_AUTHENTICATORS + 1):
        enrol(user_with_totp.user, name=f"App {n}")
    signed_in_with_code(client, user_with_totp)
    response = client.post("/account/security/setup/", {"kind": "totp", "name": "One more"})
    assert response["Location"] == "/account/security/"
    page = client.get("/account/security/").content.decode()
    assert "An account has at most 10 authenticator apps." in page
    assert Authenticator.objects.filter(user=user_with_totp.user).count() == 10


def test_rename_needs_a_name_then_records_and_notifies(
    client: Client, two_apps: tuple[Enrolled, Enrolled], frozen_time: float
) -> None:
    old, _ = two_apps
    signed_in_with_code(client, old)
    pk = app(old.user.pk, "New phone").pk
    response = client.post(f"/account/security/apps/{pk}/rename/", {"name": ""})
    assert response.status_code == 200 and "Enter a name." in response.content.decode()
    response = client.post(f"/account/security/apps/{pk}/rename/", {"name": "Pixel"})
    assert response["Location"] == "/account/security/"
    assert Authenticator.objects.get(pk=pk).name == "Pixel"
    event = SecurityEvent.objects.get(user=old.user, kind=EventKind.AUTHENTICATOR_RENAMED)
    assert event.detail == {"old": "New phone", "name": "Pixel"}
    assert Outbox.objects.filter(user=old.user, kind=NoticeKind.AUTHENTICATOR_RENAMED).exists()


def test_remove_one_app_but_the_last_is_turning_2fa_off(
    client: Client, two_apps: tuple[Enrolled, Enrolled], frozen_time: float
) -> None:
    old, new = two_apps
    signed_in_with_code(client, old)
    pk = app(old.user.pk, "New phone").pk
    page = client.get(f"/account/security/apps/{pk}/remove/").content.decode()
    assert "The codes of “New phone” will no longer work." in page
    response = client.post(f"/account/security/apps/{pk}/remove/")
    assert response["Location"] == "/account/security/"
    assert not Authenticator.objects.filter(pk=pk).exists()
    assert flows.has_2fa(old.user)
    event = SecurityEvent.objects.get(user=old.user, kind=EventKind.AUTHENTICATOR_REMOVED)
    assert event.detail["name"] == "New phone"
    assert Outbox.objects.filter(user=old.user, kind=NoticeKind.AUTHENTICATOR_REMOVED).exists()
    with pytest.raises(InvalidCode):  # its codes no longer work
        flows.verify_code(old.user, new.code(clock.time() + 60), CTX)
    # The last one: the page sends to "Disable two-factor authentication", removing nothing.
    last = Authenticator.objects.get(user=old.user).pk
    response = client.post(f"/account/security/apps/{last}/remove/")
    assert response["Location"] == "/account/security/disable/"
    assert Authenticator.objects.filter(pk=last).exists()
    with pytest.raises(flows.LastAuthenticator):
        flows.remove(confirmed_request(old.user), old.user, flows.Family.APP, last, CTX)


def test_another_accounts_app_is_not_found(
    client: Client, two_apps: tuple[Enrolled, Enrolled], frozen_time: float
) -> None:
    old, _ = two_apps
    bob = enrol(make_user("bob@example.com"))
    enrol(bob.user, name="Bob's tablet")
    signed_in_with_code(client, old)
    theirs = app(bob.user.pk, "Bob's tablet").pk
    assert client.post(f"/account/security/apps/{theirs}/remove/").status_code == 404
    assert client.post(f"/account/security/apps/{theirs}/rename/", {"name": "x"}).status_code == 404
    assert Authenticator.objects.get(pk=theirs).name == "Bob's tablet"


def test_turning_2fa_off_removes_every_app(two_apps: tuple[Enrolled, Enrolled]) -> None:
    flows.disable(confirmed_request(two_apps[0].user), two_apps[0].user, CTX)
    assert not Authenticator.objects.filter(user=two_apps[0].user).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_the_single_authenticator_over_unchanged() -> None:
    executor = MigrationExecutor(connection)
    before, after = (
        [("twofactor", "0002_recovery_trust")],
        [("twofactor", "0003_several_authenticators")],
    )
    executor.migrate(before)
    executor.loader.build_graph()
    old = executor.loader.project_state(before[0]).apps
    user = make_user("carol@example.com")
    row = old.get_model("twofactor", "Authenticator").objects.create(
        user_id=user.pk, kind="totp", secret_encrypted="sealed", last_step=1234
    )
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    carried = Authenticator.objects.get(pk=row.pk)
    assert (carried.user_id, carried.kind, carried.secret_encrypted, carried.last_step) == (
        user.pk,
        "totp",
        "sealed",
        1234,
    )
    assert carried.label == "Authenticator app" and carried.last_used_at is None
