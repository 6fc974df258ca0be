# ruff: noqa: RUF002 (the look-alike characters are the point)
"""Look-alike addresses (issue 22): an address that differs from an account's only by a
character some database, Unicode folding or normalisation would fold onto it (dotless ı,
the Kelvin sign, full-width letters, ß/ss) is another mailbox, and matches nothing.

The attack: a password reset asked for ``alice@gmaıl.com`` matched ``alice@gmail.com``
through ``email__iexact`` on PostgreSQL (its ``upper()`` folds ı to I in a UTF-8 locale) and
the code went to the typed address, a domain the attacker can register. Every path that
looks an account up by a typed address is tried with each look-alike, on the server's own
collation and, on PostgreSQL, on an ICU one (``upper()`` there turns ß into SS): the
comparison must not depend on it. Run on SQLite and PostgreSQL (``postgres`` mark).
"""

from __future__ import annotations

import io
import string
import sys
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from keyfob.accounts.addresses import AddressClash, normal_email, normalise_stored
from keyfob.accounts.models import EmailChange, PasswordReset, User
from keyfob.api import flows as api_flows
from keyfob.api.models import SshLogin
from keyfob.audit import notices
from keyfob.audit.events import Context
from keyfob.audit.models import Channel, EventKind, NoticeKind, Outbox, SecurityEvent
from tests.conftest import PASSWORD, emailed_code, enrol, make_user, password_step

pytestmark = pytest.mark.postgres

# (an account's address, what someone types): never the same mailbox.
LOOK_ALIKES = [
    pytest.param("alice@gmail.com", "alice@gma\u0131l.com", id="dotless-i"),
    pytest.param("kate@example.com", "\u212aate@example.com", id="kelvin-sign"),
    pytest.param("alice@example.com", "alice@\uff45xample.com", id="full-width"),
    pytest.param("alice@stra\u00dfe.de", "alice@strasse.de", id="sharp-s"),
]


def shouted(address: str) -> str:
    """``address`` with its ASCII letters upper-cased (str.upper() would turn ß into SS)."""
    return address.translate(str.maketrans(string.ascii_lowercase, string.ascii_uppercase))


@pytest.fixture(params=["server", "icu"])
def collation(request: pytest.FixtureRequest, db: None) -> Iterator[str]:
    """The account table's address column in the server's own collation, or (PostgreSQL
    only; SQLite has no other) in ICU's root collation, as in a database created with
    ``--locale-provider=icu``. Changed with the ORM's schema editor, inside the test's
    transaction, so it is rolled back with it."""
    if request.param == "icu" and connection.vendor == "postgresql":
        old = User._meta.get_field("email")
        new = old.clone()
        new.db_collation = "und-x-icu"  # type: ignore[attr-defined]
        new.set_attributes_from_name("email")
        new.model = User
        with connection.schema_editor() as editor:
            editor.alter_field(User, old, new)
    yield request.param


def test_the_normal_form_folds_ascii_case_and_spaces_only() -> None:
    assert normal_email("  Alice@Example.COM\n") == "alice@example.com"
    kept = ("alice@gma\u0131l.com", "\u212aate@x.org", "a@\uff45xample.com", "a@stra\u00dfe.de")
    for address in kept:
        assert normal_email(address) == address
    assert normal_email("a@STRA\u00dfE.de") == "a@stra\u00dfe.de"
    assert normal_email("\u0130nci@x.org") == "\u0130nci@x.org"  # İ is not i, nor i̇


@pytest.mark.parametrize(("stored", "typed"), LOOK_ALIKES)
def test_a_reset_for_a_look_alike_sends_nothing_for_the_account(
    client: Client, collation: str, stored: str, typed: str, frozen_time: float
) -> None:
    account = make_user(stored)
    response = client.post("/login/reset/", {"email": typed})
    assert response["Location"] == "/login/reset/code/"
    reset = PasswordReset.objects.get()
    assert reset.user is None
    assert not Outbox.objects.filter(user=account).exists()
    assert not Outbox.objects.filter(to=account.email).exists()
    # The typed address is told no account uses it: no code in that mail.
    told = Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET_CODE)
    assert told.user is None and told.params["known"] is False
    assert "no account uses it" in notices.render(told).text


def test_a_reset_code_goes_to_the_stored_address(
    client: Client, db: None, frozen_time: float
) -> None:
    account = make_user("alice@example.com")
    client.post("/login/reset/", {"email": "  ALICE@Example.COM "})
    sent = Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET_CODE)
    assert sent.user == account and sent.to == account.email == "alice@example.com"
    assert PasswordReset.objects.get().user == account


@pytest.mark.parametrize(("stored", "typed"), LOOK_ALIKES)
def test_a_look_alike_does_not_sign_in_nor_count_against_the_account(
    client: Client, collation: str, stored: str, typed: str
) -> None:
    account = make_user(stored)
    response = password_step(client, typed)
    assert response.status_code == 200  # the form again, refused
    assert "_auth_user_id" not in client.session
    assert not SecurityEvent.objects.filter(user=account).exists()
    # The account's own address, in another ASCII case, still signs in.
    assert password_step(Client(), shouted(stored)).status_code == 302


@pytest.mark.parametrize(("stored", "typed"), LOOK_ALIKES)
def test_createuser_keeps_a_look_alike_apart(
    collation: str, stored: str, typed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = make_user(stored)
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    call_command("createuser", typed, "--password-stdin", stdout=io.StringIO())
    created = User.objects.exclude(pk=account.pk).get()
    assert created.email == typed  # as typed: not folded onto another mailbox
    account.refresh_from_db()
    assert account.email == stored
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    with pytest.raises(CommandError, match="already exists"):
        call_command("createuser", shouted(stored), "--password-stdin", stdout=io.StringIO())


@pytest.mark.parametrize(("stored", "typed"), LOOK_ALIKES)
def test_the_support_desk_finds_no_account_for_a_look_alike(
    collation: str, stored: str, typed: str
) -> None:
    from tests.support.conftest import client_for

    enrol(make_user(stored))
    staff = client_for(enrol(make_user("sam@support.example", is_staff=True)).user)
    page = staff.post("/support/new/", {"email": typed, "channel": "phone", "note": ""})
    assert "No account has this e-mail address." in page.content.decode()
    assert not SecurityEvent.objects.filter(kind=EventKind.SUPPORT_OPENED).exists()


@pytest.mark.parametrize(("stored", "typed"), LOOK_ALIKES)
def test_a_look_alike_is_an_address_of_its_own_for_an_email_change(
    client: Client, collation: str, stored: str, typed: str, frozen_time: float
) -> None:
    make_user(stored)
    bob = make_user("bob@example.org")
    password_step(client, "bob@example.org")
    response = client.post("/account/email/", {"email": typed})
    assert response["Location"] == "/account/email/confirm/"
    assert Outbox.objects.get(kind=NoticeKind.EMAIL_CONFIRM).to == typed
    response = client.post("/account/email/confirm/", {"code": emailed_code(bob)})
    assert response["Location"] == "/account/"
    bob.refresh_from_db()
    assert bob.email == typed


def test_an_email_change_to_an_address_in_use_is_refused_in_any_case(
    client: Client, db: None, frozen_time: float
) -> None:
    make_user("alice@example.com")
    bob = make_user("bob@example.org")
    password_step(client, "bob@example.org")
    client.post("/account/email/", {"email": "Alice@EXAMPLE.com"})
    assert EmailChange.objects.get().email == "alice@example.com"
    response = client.post("/account/email/confirm/", {"code": emailed_code(bob)})
    assert response["Location"] == "/account/email/"
    bob.refresh_from_db()
    assert bob.email == "bob@example.org"


@pytest.mark.parametrize(("stored", "typed"), LOOK_ALIKES)
def test_the_api_links_no_account_for_a_look_alike(
    client: Client, collation: str, stored: str, typed: str
) -> None:
    account = enrol(make_user(stored)).user
    _, token = api_flows.create_token("web1", manage_links=True)
    api_flows.link(account, "alice", "web1", Context(channel=Channel.CLI))
    auth = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/ssh/logins", {"email": typed}, headers=auth)
    assert listed.status_code == 200 and listed.json()["logins"] == []
    body = {"email": typed, "login": "other", "server": "web1"}
    created = client.post("/api/v1/ssh/logins", body, content_type="application/json", headers=auth)
    assert created.status_code >= 400 and not SshLogin.objects.filter(login="other").exists()


def test_stored_addresses_are_brought_to_the_normal_form(db: None) -> None:
    # Stored past Keyfob's own paths (which always lower-cased), as a shell could.
    mixed = make_user("mixed@example.com")
    User.objects.filter(pk=mixed.pk).update(email="Mixed@Example.COM")
    kept = make_user("alice@gma\u0131l.com")
    assert normalise_stored(User, EmailChange) == 1
    mixed.refresh_from_db()
    kept.refresh_from_db()
    assert (mixed.email, kept.email) == ("mixed@example.com", "alice@gma\u0131l.com")


def test_accounts_that_are_one_address_stop_the_migration_unchanged(db: None) -> None:
    first = make_user("bob@example.com")
    second = make_user("other@example.com")
    User.objects.filter(pk=second.pk).update(email="Bob@Example.com")
    third = make_user("Carol@example.com")
    User.objects.filter(pk=third.pk).update(email="Carol@Example.com")
    with pytest.raises(AddressClash) as raised:
        normalise_stored(User, EmailChange)
    assert raised.value.clashes == {"bob@example.com": [first.pk, second.pk]}
    assert f"bob@example.com: accounts {first.pk}, {second.pk}" in str(raised.value)
    # Nothing changed, not even the address that clashes with nothing.
    assert User.objects.filter(email="Carol@Example.com").exists()
