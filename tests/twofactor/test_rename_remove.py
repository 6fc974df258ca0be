"""Issue 21: apps and keys share one rename and one remove path; an app or key removed
meanwhile, or another account's, is a 404 (renaming one removed in another tab was a 500);
a default name is recorded untranslated and read in each reader's language."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import translation

from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.twofactor import flows
from keyfob.twofactor.models import Authenticator, SecurityKey
from tests.conftest import Enrolled, confirmed_request, enrol, make_user, password_step
from tests.twofactor.keys import enrol_key, key_client

CTX = Context(address="192.0.2.1", user_agent="test")
APP, KEY = flows.Family.APP, flows.Family.KEY
URL = {APP: "/account/security/apps/{pk}/{action}/", KEY: "/account/security/keys/{pk}/{action}/"}
CHANGES = [
    EventKind.AUTHENTICATOR_RENAMED,
    EventKind.AUTHENTICATOR_REMOVED,
    EventKind.KEY_RENAMED,
    EventKind.KEY_REMOVED,
]


def url(family: flows.Family, pk: int, action: str) -> str:
    return URL[family].format(pk=pk, action=action)


def with_all_kinds(enrolled: Enrolled) -> dict[flows.Family, int]:
    """Alice's first app, then an app "New phone" and a key "Blue key"; the last two's pks."""
    user = enrolled.user
    phone = enrol(user, name="New phone")
    assert phone.recovery_codes == []
    key = enrol_key(user, name="Blue key").key
    return {APP: Authenticator.objects.get(user=user, name="New phone").pk, KEY: key.pk}


def signed_in(enrolled: Enrolled) -> Client:
    client = key_client()
    assert password_step(client).status_code == 302
    response = client.post("/login/code/?app=1", {"code": enrolled.code()})
    assert response.status_code == 302 and not response["Location"].startswith("/login")
    return client


def changes(user: User) -> int:
    return SecurityEvent.objects.filter(user=user, kind__in=CHANGES).count()


@pytest.mark.django_db
@pytest.mark.parametrize("family", [APP, KEY])
def test_one_removed_meanwhile_is_not_found(
    user_with_totp: Enrolled, frozen_time: float, family: flows.Family
) -> None:
    pks = with_all_kinds(user_with_totp)
    client = signed_in(user_with_totp)
    flows.remove(
        confirmed_request(user_with_totp.user), user_with_totp.user, family, pks[family], CTX
    )  # in another tab
    before = changes(user_with_totp.user)
    assert client.get(url(family, pks[family], "rename")).status_code == 404
    assert client.post(url(family, pks[family], "rename"), {"name": "x"}).status_code == 404
    assert client.get(url(family, pks[family], "remove")).status_code == 404
    assert client.post(url(family, pks[family], "remove")).status_code == 404
    assert changes(user_with_totp.user) == before
    with pytest.raises(flows.UnknownAuthenticator):
        flows.rename(user_with_totp.user, family, pks[family], "x", CTX)


@pytest.mark.django_db
@pytest.mark.parametrize("family", [APP, KEY])
def test_another_accounts_is_not_found_and_unchanged(
    user_with_totp: Enrolled, frozen_time: float, family: flows.Family
) -> None:
    bob = enrol(make_user("bob@example.com"))
    theirs = with_all_kinds(bob)
    client = signed_in(user_with_totp)
    for action in ("rename", "remove"):
        assert client.get(url(family, theirs[family], action)).status_code == 404
    assert client.post(url(family, theirs[family], "rename"), {"name": "x"}).status_code == 404
    assert client.post(url(family, theirs[family], "rename"), {"name": ""}).status_code == 404
    assert client.post(url(family, theirs[family], "remove")).status_code == 404
    assert set(Authenticator.objects.filter(user=bob.user).values_list("name", flat=True)) == {
        "",
        "New phone",
    }
    assert SecurityKey.objects.get(user=bob.user).name == "Blue key"
    assert changes(bob.user) == changes(user_with_totp.user) == 0


@pytest.mark.django_db
def test_an_app_is_not_found_under_the_keys_address(
    user_with_totp: Enrolled, frozen_time: float
) -> None:
    pks = with_all_kinds(user_with_totp)
    client = signed_in(user_with_totp)
    app = pks[APP]
    assert not SecurityKey.objects.filter(pk=app, user=user_with_totp.user).exists()
    assert client.post(url(KEY, app, "rename"), {"name": "x"}).status_code == 404
    assert client.post(url(KEY, app, "remove")).status_code == 404
    assert Authenticator.objects.get(pk=app).name == "New phone"


@pytest.mark.django_db
@pytest.mark.parametrize("family", [APP, KEY])
def test_rename_and_remove_record_and_notify_by_family(
    user_with_totp: Enrolled, frozen_time: float, family: flows.Family
) -> None:
    pks = with_all_kinds(user_with_totp)
    user = user_with_totp.user
    client = signed_in(user_with_totp)
    response = client.post(url(family, pks[family], "rename"), {"name": "Renamed"})
    assert response["Location"] == "/account/security/"
    renamed, removed = {
        APP: (EventKind.AUTHENTICATOR_RENAMED, EventKind.AUTHENTICATOR_REMOVED),
        KEY: (EventKind.KEY_RENAMED, EventKind.KEY_REMOVED),
    }[family]
    old = {APP: "New phone", KEY: "Blue key"}[family]
    assert SecurityEvent.objects.get(user=user, kind=renamed).detail == {
        "old": old,
        "name": "Renamed",
    }
    assert Outbox.objects.get(user=user, kind=renamed).params == {"old": old, "name": "Renamed"}
    page = client.get(url(family, pks[family], "remove")).content.decode()
    assert "Renamed" in page
    response = client.post(url(family, pks[family], "remove"))
    assert response["Location"] == "/account/security/"
    detail = SecurityEvent.objects.get(user=user, kind=removed).detail
    assert detail == (
        {"name": "Renamed", "method": "totp"} if family == APP else {"name": "Renamed"}
    )
    assert Outbox.objects.get(user=user, kind=removed).params == {"name": "Renamed"}
    said = {
        APP: "The authenticator app “Renamed” is removed.",
        KEY: "The security key “Renamed” is removed.",
    }
    assert said[family] in client.get("/account/security/").content.decode()


# Removed in another tab while this page's request runs: the request has read the row, then
# the flow waits for the removal's lock and finds nothing (before: DoesNotExist, a 500).
# On PostgreSQL the page's read does not wait for the removal; on SQLite it may, and then
# finds nothing before the flow: a 404 all the same.
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["rename", "remove"])
@pytest.mark.parametrize("family", [APP, KEY])
def test_one_removed_while_the_request_runs_is_not_found(
    user_with_totp: Enrolled, frozen_time: float, family: flows.Family, action: str
) -> None:
    pks = with_all_kinds(user_with_totp)
    client = signed_in(user_with_totp)
    model = {APP: Authenticator, KEY: SecurityKey}[family]
    deleted = threading.Event()

    def remove_meanwhile() -> None:
        try:
            with transaction.atomic():
                model.objects.filter(pk=pks[family]).delete()
                deleted.set()
                time.sleep(2)  # holds the lock while the request runs
        finally:
            connections.close_all()

    other = threading.Thread(target=remove_meanwhile)
    other.start()
    assert deleted.wait(timeout=30)
    try:
        response = client.post(url(family, pks[family], action), {"name": "x"})
    finally:
        other.join(timeout=60)
    assert response.status_code == 404
    assert not model.objects.filter(pk=pks[family]).exists()
    assert changes(user_with_totp.user) == 0


# Default names --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("made_in", "read_in"), [("fr", "en"), ("en", "fr")])
def test_a_default_name_is_recorded_untranslated_and_mailed_in_the_readers_language(
    user_with_totp: Enrolled, frozen_time: float, made_in: str, read_in: str
) -> None:
    user = user_with_totp.user
    User.objects.filter(pk=user.pk).update(language=read_in, last_language=read_in)
    user.refresh_from_db()
    enrol(user, name="New phone")
    key = enrol_key(user).key  # no name given
    first = Authenticator.objects.get(user=user, name="")
    with translation.override(made_in):
        flows.rename(user, KEY, key.pk, "Blue key", CTX)
        flows.remove(confirmed_request(user), user, APP, first.pk, CTX)
    renamed = SecurityEvent.objects.get(user=user, kind=EventKind.KEY_RENAMED)
    assert renamed.detail == {"old": "Security key", "name": "Blue key"}
    removed = SecurityEvent.objects.get(user=user, kind=EventKind.AUTHENTICATOR_REMOVED)
    assert removed.detail["name"] == "Authenticator app"
    mail = {
        kind: notices.render(Outbox.objects.get(user=user, kind=kind)).text
        for kind in (NoticeKind.KEY_RENAMED, NoticeKind.AUTHENTICATOR_REMOVED)
    }
    if read_in == "fr":
        assert "La clé de sécurité « Clé de sécurité »" in mail[NoticeKind.KEY_RENAMED]
        assert "« Application d’authentification »" in mail[NoticeKind.AUTHENTICATOR_REMOVED]
    else:
        assert "The security key “Security key”" in mail[NoticeKind.KEY_RENAMED]
        assert "The authenticator app “Authenticator app”" in mail[NoticeKind.AUTHENTICATOR_REMOVED]


@pytest.mark.django_db
def test_the_security_page_shows_a_default_name_in_the_readers_language(
    user: User, frozen_time: float
) -> None:
    with translation.override("fr"):  # turned on from a French page
        enrolled = enrol(user)
    assert SecurityEvent.objects.get(user=user, kind=EventKind.TWOFACTOR_ON).detail["name"] == (
        "Authenticator app"
    )
    client = Client()
    assert password_step(client).status_code == 302
    assert client.post("/login/code/", {"code": enrolled.code()}).status_code == 302
    app = Authenticator.objects.get(user=user)
    for language, name in (("en", "Authenticator app"), ("fr", "Application d’authentification")):
        page = client.get("/account/security/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert f">{name}</td>" in page  # the list
        assert f"(“{name}”)" in page  # the activity
        rename = client.get(url(APP, app.pk, "rename"), HTTP_ACCEPT_LANGUAGE=language)
        assert name in rename.content.decode()  # "Its name is now …"


@pytest.mark.django_db(transaction=True)
def test_the_migration_makes_recorded_french_default_names_neutral() -> None:
    executor = MigrationExecutor(connection)
    before = [("twofactor", "0005_challenge_address"), ("audit", "0008_security_keys")]
    after = [("twofactor", "0006_default_names_untranslated")]
    executor.migrate(before)
    executor.loader.build_graph()
    old = executor.loader.project_state(before).apps
    alice, claire = make_user("alice@example.com"), make_user("claire@example.com")
    events = old.get_model("audit", "SecurityEvent").objects
    outbox = old.get_model("audit", "Outbox").objects
    apps = old.get_model("twofactor", "Authenticator").objects
    french_app, french_key = "Application d’authentification", "Clé de sécurité"
    # Claire named her app with the French words herself: hers stay as they are.
    apps.create(user_id=claire.pk, name=french_app, secret_encrypted="sealed")
    rows = [
        events.create(user_id=alice.pk, kind="auth_removed", detail={"name": french_app}),
        events.create(
            user_id=alice.pk, kind="key_renamed", detail={"old": french_key, "name": "Blue"}
        ),
        events.create(user_id=alice.pk, kind="signin_ok", detail={"authenticator": french_key}),
        events.create(user_id=alice.pk, kind="2fa_on", detail={"name": "Authenticator app"}),
        events.create(user_id=claire.pk, kind="auth_added", detail={"name": french_app}),
    ]
    mails = [
        outbox.create(
            user_id=alice.pk,
            to="alice@example.com",
            kind="key_renamed",
            params={"old": french_key, "name": "Blue"},
        ),
        outbox.create(
            user_id=claire.pk,
            to="claire@example.com",
            kind="auth_added",
            params={"name": french_app},
        ),
    ]
    executor = MigrationExecutor(connection)
    executor.migrate(after)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert [SecurityEvent.objects.get(pk=r.pk).detail for r in rows] == [
        {"name": "Authenticator app"},
        {"old": "Security key", "name": "Blue"},
        {"authenticator": "Security key"},
        {"name": "Authenticator app"},
        {"name": french_app},
    ]
    assert [Outbox.objects.get(pk=m.pk).params for m in mails] == [
        {"old": "Security key", "name": "Blue"},
        {"name": french_app},
    ]
