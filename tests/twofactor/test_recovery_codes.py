"""Recovery codes: shown once, hashed at rest, single use even at once, regenerated."""

from __future__ import annotations

import json
import re
import threading

import pytest
from django.contrib.messages import get_messages
from django.db import connections, transaction
from django.test import Client

from keyfob import otp
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.otp import KeyfobError
from keyfob.twofactor import flows
from keyfob.twofactor.models import RecoveryCode
from tests.conftest import PASSWORD, Enrolled, make_user, password_step, setup_page
from tests.twofactor.passkeys import HOST, ORIGIN, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def codes(user_with_totp: Enrolled) -> list[str]:
    with transaction.atomic():
        return flows.replace_recovery_codes(user_with_totp.user)


def codes_on_page(html: str) -> list[str]:
    return re.findall(r"<li><code>([0-9A-Z-]{19})</code></li>", html)


def test_activation_shows_ten_codes_once_with_download(
    client: Client, user, frozen_time: float
) -> None:  # type: ignore[no-untyped-def]
    password_step(client)
    html = setup_page(client)
    secret = otp.b32decode_secret(re.search(r'id="secret">([A-Z2-7 ]+)<', html).group(1))  # type: ignore[union-attr]
    response = client.post("/account/security/setup/", {"code": otp.totp(secret, clock.time())})
    assert response["Location"] == "/account/security/recovery-codes/"
    page = client.get("/account/security/recovery-codes/").content.decode()
    shown = codes_on_page(page)
    assert len(shown) == 10 and len(set(shown)) == 10
    download = client.get("/account/security/recovery-codes/download/")
    assert download["Content-Type"].startswith("text/plain")
    assert "attachment" in download["Content-Disposition"]
    assert all(code in download.content.decode() for code in shown)
    # Leaving needs the box ticked.
    refused = client.post("/account/security/recovery-codes/", {})
    assert "Tick the box" in refused.content.decode()
    assert client.post("/account/security/recovery-codes/", {"saved": "on"}).status_code == 302
    # Gone for good: the page and the download no longer show them.
    assert client.get("/account/security/recovery-codes/")["Location"] == "/account/security/"
    assert client.get("/account/security/recovery-codes/download/").status_code == 404
    # Stored only as salted hashes.
    for row in RecoveryCode.objects.all():
        assert all(code not in (row.digest, row.salt) for code in shown)
    assert all(c not in str(list(RecoveryCode.objects.values())) for c in shown)


def test_a_recovery_code_signs_in_once(
    client: Client, user_with_totp: Enrolled, codes: list[str], frozen_time: float
) -> None:
    password_step(client)
    page = client.get("/login/code/?recovery=1").content.decode()
    assert ">Recovery code</label>" in page
    typed = codes[3].lower().replace("-", " ")  # case, spaces and hyphens forgiven
    response = client.post("/login/code/?recovery=1", {"recovery_code": typed})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert flows.recovery_codes_left(user_with_totp.user) == 9
    assert "You have 9 recovery codes left." in client.get("/account/security/").content.decode()
    other = Client()
    password_step(other)
    again = other.post("/login/code/?recovery=1", {"recovery_code": codes[3]})
    assert "already been used" in again.content.decode()
    assert "_auth_user_id" not in other.session
    kinds = list(SecurityEvent.objects.values_list("kind", flat=True))
    assert EventKind.RECOVERY_USED in kinds and EventKind.CODE_REUSED in kinds


@pytest.mark.parametrize(
    ("junk", "message"),
    [
        ("", "Enter one of your recovery codes."),
        ("ABCD", "16 letters and digits"),
        ("0000-0000-0000-0000", "16 letters and digits"),
        ("x" * 10_000, "16 letters and digits"),
        ("ÀBCD-EFGH-JKMN-PQRS", "16 letters and digits"),
    ],
)
def test_junk_recovery_codes_are_explained_and_not_counted(
    client: Client, user_with_totp: Enrolled, codes: list[str], junk: str, message: str
) -> None:
    password_step(client)
    response = client.post("/login/code/?recovery=1", {"recovery_code": junk})
    assert response.status_code == 200 and message in response.content.decode()
    assert flows.recovery_codes_left(user_with_totp.user) == 10
    assert not SecurityEvent.objects.filter(kind=EventKind.RECOVERY_WRONG).exists()


def test_a_wrong_recovery_code_counts_toward_the_throttle(
    client: Client, user_with_totp: Enrolled, codes: list[str], frozen_time: float
) -> None:
    password_step(client)
    for _ in range(5):
        response = client.post("/login/code/?recovery=1", {"recovery_code": "2345-6789-ABCD-EFGH"})
        assert "not one of your recovery codes" in response.content.decode()
    response = client.post("/login/code/?recovery=1", {"recovery_code": codes[0]})
    assert "Too many failed attempts" in response.content.decode()
    assert flows.recovery_codes_left(user_with_totp.user) == 10


@pytest.mark.django_db(transaction=True)
def test_the_same_recovery_code_from_two_sessions_at_once_works_once(
    user_with_totp: Enrolled, codes: list[str]
) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            barrier.wait(timeout=10)
            flows.use_recovery_code(user_with_totp.user, codes[0], Context())
            outcomes.append("ok")
        except KeyfobError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["CodeReused", "ok"]
    assert flows.recovery_codes_left(user_with_totp.user) == 9


def test_regenerate_asks_once_and_replaces_the_set(
    client: Client, user_with_totp: Enrolled, codes: list[str], frozen_time: float
) -> None:
    """The code just typed to sign in (or to "Confirm it is you") is the proof: the page
    asks for no second code (issue 16, "Ask once"; before, it asked for one and the same
    code, its step spent, was refused as already used)."""
    password_step(client)
    client.post("/login/code/", {"code": user_with_totp.code()})
    assert 'name="code"' not in client.get("/account/security/recovery-codes/new/").content.decode()
    response = client.post("/account/security/recovery-codes/new/", {})
    assert response["Location"] == "/account/security/recovery-codes/"
    fresh = codes_on_page(client.get("/account/security/recovery-codes/").content.decode())
    assert len(fresh) == 10 and not set(fresh) & set(codes)
    # The old set no longer works.
    with pytest.raises(otp.InvalidCode):
        flows.use_recovery_code(user_with_totp.user, codes[1], Context())
    assert flows.use_recovery_code(user_with_totp.user, fresh[0], Context()) == 9


def test_the_security_page_warns_at_two_or_fewer(
    client: Client, user_with_totp: Enrolled, codes: list[str], frozen_time: float
) -> None:
    for code in codes[:8]:
        flows.use_recovery_code(user_with_totp.user, code, Context())
    password_step(client)
    client.post("/login/code/", {"code": user_with_totp.code()})
    page = client.get("/account/security/").content.decode()
    assert "You have 2 unused recovery codes." in page
    assert "Make a new set before you run out." in page


# Issue 22: how many are left, after each use, and a new set asked for at two or fewer ----


def shown(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_confirm_it_is_you_with_a_recovery_code_says_how_many_are_left(
    client: Client, user_with_totp: Enrolled, codes: list[str], frozen_time: float
) -> None:
    """The sign-in said it; "Confirm it is you" said nothing."""
    password_step(client)
    client.post("/login/code/?recovery=1", {"recovery_code": codes[0]})
    confirmed = client.post(
        "/account/confirm/?recovery=1",
        {"password": PASSWORD, "recovery_code": codes[1], "next": "/account/security/"},
    )
    assert confirmed.status_code == 302 and confirmed["Location"] == "/account/security/"
    assert "You have 8 recovery codes left." in shown(confirmed)


def test_codes_used_over_ssh_ask_for_a_new_set_at_the_next_sign_in(
    client: Client, user_with_totp: Enrolled, codes: list[str], frozen_time: float
) -> None:
    """SSH and the API cannot show how many are left (the notice e-mail says it): the next
    sign-in on the portal does, from two left, whatever the factor."""
    user = user_with_totp.user
    ssh = Context(address="192.0.2.9", user_agent="ssh")
    for code in codes[:7]:
        flows.use_recovery_code(user, code, ssh)
    password_step(client)
    response = client.post("/login/code/", {"code": user_with_totp.code()})
    assert response.status_code == 302 and "recovery code" not in shown(response)  # 3 left
    client.post("/logout/")
    flows.use_recovery_code(user, codes[7], ssh)
    password_step(client)
    with clock.frozen(frozen_time + 30):
        response = client.post("/login/code/", {"code": user_with_totp.code()})
    assert response.status_code == 302
    assert "You have 2 recovery codes left. Make a new set from Account → Security." in shown(
        response
    )
    page = client.get("/account/security/").content.decode()
    assert 'class="warning" role="alert" id="recovery-left"' in page
    assert "Make a new set before you run out." in page


def test_a_passkey_sign_in_asks_for_a_new_set_when_few_are_left(frozen_time: float) -> None:
    user = make_user("pat@example.com")
    soft, _ = register(user)
    with transaction.atomic():
        left = flows.replace_recovery_codes(user)
    for code in left[:9]:
        flows.use_recovery_code(user, code, Context(address="192.0.2.9"))
    browser = Client(HTTP_HOST=HOST)
    options = browser.post("/login/passkey/options/").json()
    response = browser.post(
        "/login/passkey/", {"credential": json.dumps(soft.get(options, ORIGIN))}
    )
    assert response.status_code == 302
    assert "You have 1 recovery code left. Make a new set" in shown(response)
