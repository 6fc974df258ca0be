"""Issue 22: a staff member's first security key needs an enrolment code from an operator
(``keyfob staff-key-invite EMAIL``).

The attack: a phishing page relays a staff member's password and authenticator code, gets a
session fresh enough to add a key, adds a passkey it holds, and from then on that passkey
alone opens the staff pages. Now the first key of a staff member (under the staff rule) needs
a one-time code issued for that account, handed over out of band, good for an hour.
"""

from __future__ import annotations

import json
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor import flows
from keyfob.twofactor.models import SecurityKey, StaffKeyInvite
from tests.conftest import Enrolled, enrol, make_user, password_step
from tests.twofactor.keys import ORIGIN, key_client, options
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db

ADD = "/account/security/keys/add/"
ADD_OPTIONS = "/account/security/keys/options/"
STAFF_PAGE = "/support/"
WRONG_INVITE = "This enrolment code is not right, was used already or has expired."


@pytest.fixture
def sam(db: None, frozen_time: float) -> Enrolled:
    """Sam, staff, with an authenticator app and no key yet."""
    return enrol(make_user("sam@support.example", is_staff=True))


def with_code(enrolled: Enrolled) -> Client:
    """A session made with the password and an app's code: what a phishing page that relays
    both gets."""
    client = key_client()
    assert password_step(client, enrolled.user.email).status_code == 302
    response = client.post("/login/code/", {"code": enrolled.code()})
    assert response.status_code == 302 and not response["Location"].startswith("/login")
    return client


def add_passkey(client: Client, soft: SoftAuthenticator, **fields: str) -> Any:
    """Press "Add this security key" with a passkey ``soft`` makes."""
    answer = soft.create(options(client, ADD_OPTIONS), ORIGIN, resident=True)
    answer["clientExtensionResults"] = {"credProps": {"rk": True}}
    return client.post(ADD, {"name": "Mine", "credential": json.dumps(answer), **fields})


def passkey_signin(soft: SoftAuthenticator) -> Client:
    client = key_client()
    response = client.post("/login/passkey/options/")
    assert response.status_code == 200
    answer = json.dumps(soft.get(response.json(), ORIGIN))
    client.post("/login/passkey/", {"credential": answer})
    return client


def invite(email: str) -> str:
    out = StringIO()
    call_command("staff-key-invite", email, stdout=out)
    found = re.search(r"Enrolment code for \S+: ([A-Z2-9]{4}(?:-[A-Z2-9]{4}){3})", out.getvalue())
    assert found, out.getvalue()
    return found.group(1)


def test_a_relayed_password_and_code_cannot_add_a_staff_members_first_key(sam: Enrolled) -> None:
    phisher = with_code(sam)
    soft = SoftAuthenticator(transports=("internal",))
    page = add_passkey(phisher, soft)
    assert page.status_code == 200
    assert "Enter the enrolment code an operator gave you." in page.content.decode()
    guessed = add_passkey(phisher, soft, invite="ABCD-EFGH-JKMN-PQRS")
    assert guessed.status_code == 200 and WRONG_INVITE in guessed.content.decode()
    assert not SecurityKey.objects.exists()
    # Their passkey is no key of Sam's: it neither signs in nor opens the staff pages.
    client = passkey_signin(soft)
    assert "_auth_user_id" not in client.session
    assert client.get(STAFF_PAGE).status_code == 302


def test_the_operators_code_adds_the_first_key_once(sam: Enrolled) -> None:
    """Printed once by the command, kept only as a hash, accepted however it is typed,
    used up by the key it adds."""
    code = invite(sam.user.email)
    issued = SecurityEvent.objects.get(user=sam.user, kind=EventKind.STAFF_KEY_INVITE)
    assert issued.channel == Channel.CLI
    row = StaffKeyInvite.objects.get(user=sam.user)
    assert code not in row.digest and code.replace("-", "") not in row.digest  # stored hashed
    client = with_code(sam)
    page = client.get(ADD).content.decode()
    assert ">Enrolment code</label>" in page and "It works for an hour." in page
    soft = SoftAuthenticator(transports=("internal",))
    response = add_passkey(client, soft, invite=code.lower().replace("-", " "))
    assert response.status_code == 302, response.content.decode()
    assert SecurityKey.objects.filter(user=sam.user).count() == 1
    assert StaffKeyInvite.objects.get(user=sam.user).used_at == clock.now()
    # The passkey opens the staff pages.
    assert passkey_signin(soft).get(STAFF_PAGE).status_code == 200
    # Used: with the key removed, the same code adds no first key again.
    SecurityKey.objects.filter(user=sam.user).delete()
    with clock.frozen(clock.time() + 60):  # the next code of Sam's app
        again = add_passkey(with_code(sam), SoftAuthenticator(), invite=code)
    assert again.status_code == 200 and WRONG_INVITE in again.content.decode()
    assert not SecurityKey.objects.filter(user=sam.user).exists()


def test_a_code_works_for_an_hour_for_its_own_account_and_a_new_one_replaces_it(
    sam: Enrolled, frozen_time: float
) -> None:
    tess = enrol(make_user("tess@support.example", is_staff=True))
    tess_code = invite(tess.user.email)
    old = invite(sam.user.email)
    new = invite(sam.user.email)
    assert StaffKeyInvite.objects.filter(user=sam.user).count() == 1
    client = with_code(sam)
    for wrong in (tess_code, old):
        refused = add_passkey(client, SoftAuthenticator(), invite=wrong)
        assert WRONG_INVITE in refused.content.decode()
    with clock.frozen(frozen_time + flows.STAFF_INVITE_MINUTES * 60 + 1):
        late = with_code(sam)
        assert WRONG_INVITE in add_passkey(late, SoftAuthenticator(), invite=new).content.decode()
    assert not SecurityKey.objects.exists()
    assert add_passkey(client, SoftAuthenticator(), invite=new).status_code == 302


def test_customers_and_staff_with_the_rule_off_need_no_code(
    sam: Enrolled, settings: Any, frozen_time: float
) -> None:
    carol = enrol(make_user("carol@example.com"))
    client = with_code(carol)
    assert "Enrolment code" not in client.get(ADD).content.decode()
    assert add_passkey(client, SoftAuthenticator()).status_code == 302
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False
    staff = with_code(sam)
    assert "Enrolment code" not in staff.get(ADD).content.decode()
    assert add_passkey(staff, SoftAuthenticator()).status_code == 302


def test_the_command_refuses_what_needs_no_code(sam: Enrolled, settings: Any) -> None:
    make_user("carol@example.com")
    for email, said in [
        ("nobody@example.com", "no account"),
        ("carol@example.com", "is not staff"),
    ]:
        with pytest.raises(CommandError, match=said):
            call_command("staff-key-invite", email)
    code = invite("SAM@support.example")
    add_passkey(with_code(sam), SoftAuthenticator(), invite=code)
    with pytest.raises(CommandError, match="has a security key already"):
        call_command("staff-key-invite", sam.user.email)
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False
    with pytest.raises(CommandError, match="is off"):
        call_command("staff-key-invite", sam.user.email)
    assert StaffKeyInvite.objects.count() == 1


def test_a_session_made_fresh_by_a_relayed_code_adds_no_key_after_the_first(
    sam: Enrolled, frozen_time: float
) -> None:
    """The phishing page holds a session signed in with Sam's relayed code, fresh for some
    minutes. Sam then adds the first key with the operator's code, elsewhere. The phishing
    session, no longer asked for an enrolment code, must confirm with Sam's key to add one."""
    phisher = with_code(sam)
    with clock.frozen(frozen_time + 30):
        sam_session = with_code(sam)
        assert add_passkey(sam_session, SoftAuthenticator(), invite=invite(sam.user.email))
    assert SecurityKey.objects.filter(user=sam.user).count() == 1
    response = phisher.get(ADD)
    assert response.status_code == 302
    assert response["Location"] == "/account/confirm/?next=%2Faccount%2Fsecurity%2Fkeys%2Fadd%2F"
    answer = SoftAuthenticator().create(
        {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "AAAA"}, ORIGIN
    )
    posted = phisher.post(ADD, {"credential": json.dumps(answer)})
    assert posted.status_code == 302 and posted["Location"].startswith("/account/confirm/")
    assert SecurityKey.objects.filter(user=sam.user).count() == 1
