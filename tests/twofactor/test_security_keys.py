"""Issue 17, stage 2: security keys and passkeys on the pages, through the Django test client
with the software authenticator (tests/webauthn_soft.py) as the browser: adding one from the
Security page (2FA on with a key alone), the second factor at sign-in, "Confirm it is you",
rename and remove, the activity; and bad input on every new endpoint (a clear message,
nothing changed, never a 500).

Real Chromium with its virtual authenticator drives the same pages in
test_browser_security_keys.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from keyfob.accounts import flows as account_flows
from keyfob.audit.events import Context
from keyfob.audit.models import EventKind, NoticeKind, Outbox, SecurityEvent
from keyfob.core import clock
from keyfob.otp import CodeReused, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor import messages as twofactor_views
from keyfob.twofactor.messages import ADD_KEY_MESSAGES, KEY_MESSAGES
from keyfob.twofactor.models import Authenticator, RecoveryCode, SecurityKey, WebAuthnChallenge
from tests.conftest import PASSWORD, Enrolled, make_user, password_step, session_proofs
from tests.twofactor.keys import (
    ORIGIN,
    EnrolledKey,
    created,
    enrol_key,
    key_client,
    options,
    signed,
)
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db

SIGNIN_OPTIONS = "/login/code/key-options/"
REAUTH_OPTIONS = "/account/confirm/key-options/"
ADD_OPTIONS = "/account/security/keys/options/"
ADD = "/account/security/keys/add/"


@pytest.fixture
def kclient() -> Client:
    return key_client()


@pytest.fixture
def alice_key(user_with_totp: Enrolled, frozen_time: float) -> EnrolledKey:
    """Alice: an authenticator app, then a security key "Blue key"."""
    return enrol_key(user_with_totp.user, name="Blue key")


def signed_in(client: Client, enrolled: Enrolled) -> Client:
    assert password_step(client).status_code == 302
    response = client.post("/login/code/?app=1", {"code": enrolled.code()})
    assert response.status_code == 302 and not response["Location"].startswith("/login")
    return client


def text(response: Any) -> str:
    return str(response.content.decode())


def events(user: Any, kind: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def everything(user: Any) -> dict[str, Any]:
    """What a refused answer must leave as it was (challenges aside: a used one stays used)."""
    return {
        "keys": list(SecurityKey.objects.filter(user=user).values()),
        "apps": list(Authenticator.objects.filter(user=user).values()),
        "recovery": sorted(RecoveryCode.objects.filter(user=user).values_list("pk", flat=True)),
        "events": SecurityEvent.objects.filter(user=user).count(),
        "outbox": Outbox.objects.filter(user=user).count(),
    }


# Adding a key --------------------------------------------------------------------------


def test_the_add_page_runs_the_ceremony_with_a_name(
    kclient: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    signed_in(kclient, user_with_totp)
    page = text(kclient.get("/account/security/"))
    assert f'href="{ADD}"' in page and "Add a security key" in page
    page = text(kclient.get(ADD))
    assert "<h1>Add a security key</h1>" in page
    assert 'data-webauthn="create"' in page and f'data-options-url="{ADD_OPTIONS}"' in page
    assert 'name="credential"' in page and ">Name of this security key</label>" in page
    # Without script, or without WebAuthn, the page says why there is no button.
    assert "<noscript>" in page and "data-webauthn-unavailable hidden" in page
    assert "data-webauthn-start hidden" in page and "keyfob/webauthn.js" in page
    soft = SoftAuthenticator()
    answer = created(kclient, soft)
    response = kclient.post(ADD, {"name": "Blue key", "credential": answer})
    assert response["Location"] == "/account/security/"  # 2FA was on: no new codes
    key = SecurityKey.objects.get(user=user_with_totp.user)
    assert (key.name, key.transports, key.user_verified) == ("Blue key", ["usb"], True)
    assert key.kind_label == "Security key" and not key.passwordless
    page = text(kclient.get("/account/security/"))
    assert "Your security key “Blue key” is added." in page
    assert ">Blue key</td>" in page and "Authenticator app, time-based codes" in page
    added = events(user_with_totp.user, EventKind.KEY_ADDED)
    assert [e.detail["name"] for e in added] == ["Blue key"]
    assert Outbox.objects.filter(user=user_with_totp.user, kind=NoticeKind.KEY_ADDED).exists()
    # The options now exclude it: the same key is not added twice.
    excluded = options(kclient, ADD_OPTIONS)["excludeCredentials"]
    assert [c["id"] for c in excluded] == [key.credential_id]


def test_a_key_alone_turns_2fa_on_with_recovery_codes(kclient: Client, frozen_time: float) -> None:
    carol = make_user("carol@example.com", phone="+33123456789")
    assert password_step(kclient, "carol@example.com")["Location"] == "/account/security/"
    setup = text(kclient.get("/account/security/setup/"))
    assert "Use an authenticator app" in setup and "Use a security key or passkey" in setup
    assert f'href="{ADD}"' in setup
    page = text(kclient.get(ADD))
    assert "<h1>Enable two-factor authentication</h1>" in page
    response = kclient.post(ADD, {"credential": created(kclient, SoftAuthenticator())})
    assert response["Location"] == "/account/security/recovery-codes/"
    assert flows.has_2fa(carol) and flows.recovery_codes_left(carol) == flows.RECOVERY_CODES
    codes_page = text(kclient.get("/account/security/recovery-codes/"))
    assert codes_page.count("<li><code>") == flows.RECOVERY_CODES
    on = events(carol, EventKind.TWOFACTOR_ON)
    assert [e.detail for e in on] == [{"method": "security_key", "name": "Security key"}]
    # The key proved itself, not the person: the next change asks again.
    assert kclient.get("/account/email/")["Location"].startswith("/account/confirm/")
    security = text(kclient.get("/account/security/"))
    assert "Two-factor authentication is on." in security
    assert "Each sign-in asks for your security key after your password." in security
    assert 'id="recovery-left"' in security


def test_adding_a_key_without_a_phone_asks_for_one_first(
    kclient: Client, frozen_time: float
) -> None:
    make_user("dan@example.com")
    password_step(kclient, "dan@example.com")
    assert kclient.get(ADD)["Location"] == "/account/security/setup/phone/"


def test_the_flow_refuses_a_new_key_once_the_confirmation_is_stale(
    kclient: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    """Not only the page's guard: register_key itself wants a recent confirmation."""
    signed_in(kclient, user_with_totp)
    answer = created(kclient, SoftAuthenticator())
    with clock.frozen(frozen_time + settings.KEYFOB_REAUTH_SECONDS + 1):
        response = kclient.post(ADD, {"credential": answer})
        assert response["Location"].startswith("/account/confirm/")
        request = RequestFactory().post("/", HTTP_HOST="localhost")
        request.session = kclient.session
        request.user = user_with_totp.user
        with pytest.raises(account_flows.ReauthRequired):
            flows.register_key(request, user_with_totp.user, answer, "", Context())
    assert not SecurityKey.objects.exists()


def test_at_most_ten_keys(kclient: Client, user_with_totp: Enrolled, frozen_time: float) -> None:
    for n in range(10):
        enrol_key(user_with_totp.user, f"Key {n}")
    signed_in(kclient, user_with_totp)
    assert kclient.get(ADD)["Location"] == "/account/security/"
    assert "An account has at most 10 security keys." in text(kclient.get("/account/security/"))
    response = kclient.post(ADD_OPTIONS)
    assert response.status_code == 400 and "at most 10" in response.json()["error"]


# The second factor at sign-in ----------------------------------------------------------


def test_sign_in_with_password_and_key(kclient: Client, alice_key: EnrolledKey) -> None:
    password_step(kclient)
    page = text(kclient.get("/login/code/"))
    assert 'data-webauthn="get"' in page and f'data-options-url="{SIGNIN_OPTIONS}"' in page
    assert ">Use your security key</button>" in page
    assert 'href="/login/code/?app=1"' in page and 'href="/login/code/?recovery=1"' in page
    assert "Trust this browser for 30 days</label>" in page
    asked = options(kclient, SIGNIN_OPTIONS)
    assert asked["rpId"] == "localhost"
    assert [c["id"] for c in asked["allowCredentials"]] == [alice_key.key.credential_id]
    answer = json.dumps(alice_key.soft.get(asked, ORIGIN))
    response = kclient.post("/login/code/", {"credential": answer, "trust": "on"})
    assert response.status_code == 302 and response["Location"] == "/account/security/"
    assert kclient.session["_auth_user_id"] == str(alice_key.user.pk)
    assert session_proofs(kclient) == ["password", "security_key"]
    assert "keyfob-trust" in response.cookies
    ok = events(alice_key.user, EventKind.SIGNIN_OK)
    assert [e.detail for e in ok] == [
        {"second_factor": "security_key", "authenticator": "Blue key"}
    ]
    alice_key.key.refresh_from_db()
    assert alice_key.key.sign_count == 1 and alice_key.key.last_used_at == clock.now()
    page = text(kclient.get("/account/security/"))
    assert "with “Blue key”" in page


def test_the_code_step_still_takes_an_app_code_or_a_recovery_code(
    kclient: Client, user_with_totp: Enrolled, alice_key: EnrolledKey
) -> None:
    password_step(kclient)
    page = text(kclient.get("/login/code/?app=1"))
    assert ">Authentication code</label>" in page and 'href="/login/code/"' in page
    response = kclient.post("/login/code/?app=1", {"code": user_with_totp.code()})
    assert response["Location"] == "/account/security/"
    assert session_proofs(kclient) == ["password", "code"]
    kclient.post("/logout/")
    password_step(kclient)
    page = text(kclient.get("/login/code/?recovery=1"))
    assert ">Recovery code</label>" in page and 'href="/login/code/?app=1"' in page
    response = kclient.post(
        "/login/code/?recovery=1", {"recovery_code": user_with_totp.recovery_codes[0]}
    )
    assert response["Location"] == "/account/security/"


def test_an_account_with_keys_only_is_always_asked_for_its_key(
    kclient: Client, frozen_time: float
) -> None:
    erin = enrol_key(make_user("erin@example.com"), "Phone passkey")
    password_step(kclient, "erin@example.com")
    page = text(kclient.get("/login/code/?app=1"))  # no app: the key it is
    assert 'data-webauthn="get"' in page and 'id="use-code"' not in page
    answer = signed(kclient, SIGNIN_OPTIONS, erin.soft)
    assert kclient.post("/login/code/?app=1", {"credential": answer}).status_code == 302


def test_another_accounts_key_is_refused(
    kclient: Client, alice_key: EnrolledKey, frozen_time: float
) -> None:
    bob = enrol_key(make_user("bob@example.com"), "Bob's key")
    password_step(kclient)
    asked = options(kclient, SIGNIN_OPTIONS)
    # Bob's authenticator signs Alice's challenge with Bob's credential.
    answer = bob.soft.get(asked, ORIGIN, credential_id=bob.credential.id_b64)
    before = everything(alice_key.user)
    response = kclient.post("/login/code/", {"credential": json.dumps(answer)})
    assert response.status_code == 200 and "_auth_user_id" not in kclient.session
    assert "This security key was not accepted." in text(response)
    wrong = events(alice_key.user, EventKind.KEY_WRONG)
    assert len(wrong) == 1 and wrong[0].detail == {}  # nothing names Bob's key
    assert SecurityKey.objects.get(pk=bob.key.pk).sign_count == 0
    assert everything(alice_key.user)["keys"] == before["keys"]


def test_a_replayed_answer_is_refused(kclient: Client, alice_key: EnrolledKey) -> None:
    password_step(kclient)
    answer = signed(kclient, SIGNIN_OPTIONS, alice_key.soft)
    assert kclient.post("/login/code/", {"credential": answer}).status_code == 302
    kclient.post("/logout/")
    # Posted again in a new sign-in: its challenge is spent, and the new one is not in it.
    password_step(kclient)
    response = kclient.post("/login/code/", {"credential": answer})
    assert "_auth_user_id" not in kclient.session
    assert "That took too long, or the page was sent twice." in text(response)
    options(kclient, SIGNIN_OPTIONS)
    response = kclient.post("/login/code/", {"credential": answer})
    assert "This security key was not accepted." in text(response)
    assert "_auth_user_id" not in kclient.session


def test_a_counter_going_backwards_is_refused_as_a_copy(
    kclient: Client, alice_key: EnrolledKey
) -> None:
    password_step(kclient)
    kclient.post("/login/code/", {"credential": signed(kclient, SIGNIN_OPTIONS, alice_key.soft)})
    kclient.post("/logout/")
    # The real key signed elsewhere since (the server saw its counter reach 5)…
    SecurityKey.objects.filter(pk=alice_key.key.pk).update(sign_count=5)
    password_step(kclient)
    # …and a copy with an older counter answers here.
    answer = signed(kclient, SIGNIN_OPTIONS, alice_key.soft, sign_count=3)
    response = kclient.post("/login/code/", {"credential": answer})
    assert "_auth_user_id" not in kclient.session
    assert "it may have been copied" in text(response)
    clone = events(alice_key.user, EventKind.KEY_CLONE)
    assert [e.detail for e in clone] == [{"authenticator": "Blue key"}]
    notice = Outbox.objects.get(user=alice_key.user, kind=NoticeKind.KEY_CLONE)
    assert notice.params == {"name": "Blue key"}
    assert SecurityKey.objects.get(pk=alice_key.key.pk).sign_count == 5


def test_a_challenge_expires_after_five_minutes(kclient: Client, alice_key: EnrolledKey) -> None:
    password_step(kclient)
    asked = options(kclient, SIGNIN_OPTIONS)
    with clock.frozen(clock.time() + 299):
        # Within the sign-in's 5 minutes but past the challenge's: ask again.
        WebAuthnChallenge.objects.update(expires_at=clock.now())
        response = kclient.post(
            "/login/code/", {"credential": json.dumps(alice_key.soft.get(asked, ORIGIN))}
        )
        assert "That took too long" in text(response)
        assert not events(alice_key.user, EventKind.KEY_WRONG)  # not counted as a guess


def test_wrong_keys_share_the_accounts_one_throttle(
    kclient: Client, alice_key: EnrolledKey, user_with_totp: Enrolled
) -> None:
    password_step(kclient)
    for _ in range(5):
        answer = signed(kclient, SIGNIN_OPTIONS, alice_key.soft, bad_signature=True)
        assert "not accepted" in text(kclient.post("/login/code/", {"credential": answer}))
    answer = signed(kclient, SIGNIN_OPTIONS, alice_key.soft)
    response = kclient.post("/login/code/", {"credential": answer})
    assert "Too many failed attempts. Try again in" in text(response)
    # The app's code waits too: more authenticators are not more guesses.
    with pytest.raises(Throttled):
        flows.verify_code(alice_key.user, user_with_totp.code(), Context())


def test_the_pending_rules_hold_for_the_key(kclient: Client, alice_key: EnrolledKey) -> None:
    password_step(kclient)
    answer = signed(kclient, SIGNIN_OPTIONS, alice_key.soft)
    with clock.frozen(clock.time() + 301):
        response = kclient.post(SIGNIN_OPTIONS)
        assert response.status_code == 400
        assert response.json()["error"] == "Your sign-in took too long. Please start again."
        assert kclient.post("/login/code/", {"credential": answer})["Location"] == "/login/"
    assert "_auth_user_id" not in kclient.session
    # Without a password step at all, there are no options to get.
    assert key_client().post(SIGNIN_OPTIONS).status_code == 400


# "Confirm it is you" --------------------------------------------------------------------


def test_confirm_it_is_you_with_password_and_key(kclient: Client, alice_key: EnrolledKey) -> None:
    password_step(kclient)
    kclient.post("/login/code/", {"credential": signed(kclient, SIGNIN_OPTIONS, alice_key.soft)})
    with clock.frozen(clock.time() + 700):
        back = "/account/security/keys/add/"
        assert kclient.get(back)["Location"] == f"/account/confirm/?next={back.replace('/', '%2F')}"
        page = text(kclient.get(f"/account/confirm/?next={back}"))
        assert "This change needs your password and your security key." in page
        assert f'data-options-url="{REAUTH_OPTIONS}"' in page and 'name="password"' in page
        assert ">Confirm with your security key</button>" in page
        # A wrong password: refused, and the key's answer is not spent on it.
        answer = signed(kclient, REAUTH_OPTIONS, alice_key.soft)
        response = kclient.post(
            "/account/confirm/", {"password": "wrong", "credential": answer, "next": back}
        )
        assert "This password is not right." in text(response)
        response = kclient.post(
            "/account/confirm/", {"password": PASSWORD, "credential": answer, "next": back}
        )
        assert response["Location"] == back
        assert kclient.get(back).status_code == 200
        assert session_proofs(kclient) == ["password", "security_key"] * 2


def test_confirm_it_is_you_offers_the_other_ways(
    kclient: Client, user_with_totp: Enrolled, alice_key: EnrolledKey
) -> None:
    signed_in(kclient, user_with_totp)
    page = text(kclient.get("/account/confirm/?next=/account/&app=1"))
    assert 'name="code"' in page and 'id="use-key"' in page
    response = kclient.post(
        "/account/confirm/?app=1",
        {"password": PASSWORD, "code": user_with_totp.code(clock.time() + 30), "next": "/"},
    )
    assert response.status_code == 302
    assert "security_key" not in session_proofs(kclient)


# Rename, remove, the Security page ------------------------------------------------------


def test_rename_and_remove_a_key(
    kclient: Client, user_with_totp: Enrolled, alice_key: EnrolledKey
) -> None:
    signed_in(kclient, user_with_totp)
    pk = alice_key.key.pk
    page = text(kclient.get("/account/security/"))
    assert 'aria-label="Rename Blue key"' in page and 'aria-label="Remove Blue key"' in page
    response = kclient.post(f"/account/security/keys/{pk}/rename/", {"name": ""})
    assert "Enter a name." in text(response)
    response = kclient.post(f"/account/security/keys/{pk}/rename/", {"name": "x" * 61})
    assert "A name has at most 60 characters." in text(response)
    response = kclient.post(f"/account/security/keys/{pk}/rename/", {"name": "YubiKey"})
    assert response["Location"] == "/account/security/"
    assert SecurityKey.objects.get(pk=pk).name == "YubiKey"
    renamed = events(alice_key.user, EventKind.KEY_RENAMED)
    assert [e.detail for e in renamed] == [{"old": "Blue key", "name": "YubiKey"}]
    assert "<h1>Remove a security key</h1>" in text(
        kclient.get(f"/account/security/keys/{pk}/remove/")
    )
    response = kclient.post(f"/account/security/keys/{pk}/remove/")
    assert response["Location"] == "/account/security/"
    assert not SecurityKey.objects.exists()
    assert "The security key “YubiKey” is removed." in text(kclient.get("/account/security/"))
    assert [e.detail for e in events(alice_key.user, EventKind.KEY_REMOVED)] == [
        {"name": "YubiKey"}
    ]
    assert Outbox.objects.filter(user=alice_key.user, kind=NoticeKind.KEY_REMOVED).exists()


def test_the_last_authenticator_of_any_kind_goes_to_the_turn_off_page(
    kclient: Client, user_with_totp: Enrolled, alice_key: EnrolledKey
) -> None:
    signed_in(kclient, user_with_totp)
    app = Authenticator.objects.get(user=user_with_totp.user)
    # An app and a key: the app may go (the key is left).
    assert "<h1>Remove an authenticator app</h1>" in text(
        kclient.get(f"/account/security/apps/{app.pk}/remove/")
    )
    assert kclient.post(f"/account/security/apps/{app.pk}/remove/")["Location"] == (
        "/account/security/"
    )
    # The session proved itself with that app's code: the proof died with the app, so
    # the next change asks again (here, with the key).
    pk = alice_key.key.pk
    assert kclient.get(f"/account/security/keys/{pk}/remove/")["Location"].startswith(
        "/account/confirm/"
    )
    answer = signed(kclient, REAUTH_OPTIONS, alice_key.soft)
    kclient.post("/account/confirm/", {"password": PASSWORD, "credential": answer})
    # The key is the last one now: removing it is turning 2FA off.
    assert kclient.get(f"/account/security/keys/{pk}/remove/")["Location"] == (
        "/account/security/disable/"
    )
    assert kclient.post(f"/account/security/keys/{pk}/remove/")["Location"] == (
        "/account/security/disable/"
    )
    assert SecurityKey.objects.filter(pk=pk).exists()
    assert 'aria-label="Remove Blue key"' not in text(kclient.get("/account/security/"))
    kclient.post("/account/security/disable/")
    assert not SecurityKey.objects.exists() and not flows.has_2fa(user_with_totp.user)


def test_the_security_page_says_what_each_key_is(
    kclient: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    user = user_with_totp.user
    enrol_key(user, "USB key")
    enrol_key(user, "Laptop", SoftAuthenticator(transports=["internal"]), resident=True)
    enrol_key(user, "Phone", resident=True, backup_eligible=True, backed_up=True)
    enrol_key(user, "No PIN", resident=True, user_verified=False)
    signed_in(kclient, user_with_totp)
    page = text(kclient.get("/account/security/"))
    rows = page.split('<tr class="security-key">')[1:]
    kinds = {
        "USB key": ("Security key", "No"),
        "Laptop": ("Passkey on one device", "Yes: it signs in alone"),
        "Phone": ("Synced passkey", "Yes: it signs in alone"),
        "No PIN": ("Passkey on one device", "No"),
    }
    assert len(rows) == 4
    for row, (name, (kind, alone)) in zip(rows, kinds.items(), strict=True):
        assert f">{name}</td>" in row and f">{kind}</td>" in row and f">{alone}</td>" in row
    assert "Each sign-in asks for your security key, or a single-use code" in page


def test_the_activity_names_the_key_and_marks_failures(
    kclient: Client, alice_key: EnrolledKey, user_with_totp: Enrolled
) -> None:
    password_step(kclient)
    answer = signed(kclient, SIGNIN_OPTIONS, alice_key.soft, bad_signature=True)
    kclient.post("/login/code/", {"credential": answer})
    kclient.post("/login/code/", {"credential": signed(kclient, SIGNIN_OPTIONS, alice_key.soft)})
    page = text(kclient.get("/account/security/"))
    activity = page[page.index('id="activity-table"') :]
    assert (
        '<span class="failed">Failed:</span> Security key refused <span class="muted">'
        "(with “Blue key”)</span>" in activity
    )
    assert 'Signed in <span class="muted">(with “Blue key”)</span>' in activity
    assert "Security key added" in activity and "(“Blue key”)" in activity


# Every refusal has its text --------------------------------------------------------------


def test_every_key_refusal_has_a_text() -> None:
    from keyfob.twofactor.flows import webauthn

    using = [
        webauthn.KeyRefused(),
        webauthn.KeyCloned(),
        webauthn.ChallengeExpired(),
        Throttled(90),
        flows.NotEnrolled(),
        webauthn.WrongHost(),
        CodeReused(),
    ]
    for exc in using:
        assert exc.code in KEY_MESSAGES, exc.code
    texts = {twofactor_views.key_error(e, KEY_MESSAGES) for e in using}
    assert len(texts) == len(using) - 1  # a reused counter reads as a challenge gone
    adding = [webauthn.KeyRefused(), webauthn.ChallengeExpired(), webauthn.WrongHost()]
    adding.append(webauthn.TooManyKeys())
    for exc in adding:
        assert exc.code in ADD_KEY_MESSAGES, exc.code


def test_a_page_outside_the_relying_party_is_told_so(
    user_with_totp: Enrolled, alice_key: EnrolledKey, settings: Any
) -> None:
    settings.KEYFOB_WEBAUTHN_RP_ID = "example.com"
    client = key_client()
    password_step(client)
    response = client.post(SIGNIN_OPTIONS)
    assert response.status_code == 400
    assert "cannot be used at this address" in response.json()["error"]


# Bad input on every new endpoint --------------------------------------------------------

JUNK = [
    "",
    "   ",
    "not json",
    "[]",
    "null",
    "42",
    '"a string"',
    "{}",
    '{"rawId": 5}',
    '{"rawId": "!!!"}',
    '{"rawId": "é"}',
    '{"rawId": "AAAA", "response": [1, 2]}',
    '{"rawId": "AAAA", "id": "AAAA", "type": "public-key", "response": "x"}',
    '{"rawId": "AAAA", "id": "AAAA", "type": "public-key", "response": {"clientDataJSON": 1}}',
    '{"rawId": "AAAA", "id": "AAAA", "type": "public-key", "response": {"clientDataJSON": '
    '"e30", "attestationObject": "oA", "authenticatorData": "AA", "signature": "AA", '
    '"transports": 5, "userHandle": 7}}',
    "{" * 5000,
    # Nested deeper than Python's recursion limit (json.loads raises RecursionError, not
    # ValueError), and still under the form's length cap.
    "[" * 20_000,
    '{"rawId": "AAAA", "x": ' + "[" * 20_000,
    "x" * 40_000,
]


@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_instead_of_a_key_answer_changes_nothing(
    kclient: Client, alice_key: EnrolledKey, junk: str
) -> None:
    user = alice_key.user
    password_step(kclient)
    options(kclient, SIGNIN_OPTIONS)
    before = everything(user)
    response = kclient.post("/login/code/", {"credential": junk})
    assert response.status_code == 200 and "_auth_user_id" not in kclient.session
    assert 'class="error-summary"' in text(response)
    after = everything(user)
    # A well-formed answer for no key of the account is a wrong guess (counted); junk that
    # is not an answer at all changes nothing.
    if after != before:
        assert after["events"] == before["events"] + 1 and after["keys"] == before["keys"]
        assert events(user, EventKind.KEY_WRONG)


@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_when_adding_a_key_changes_nothing(
    kclient: Client, alice_key: EnrolledKey, user_with_totp: Enrolled, junk: str
) -> None:
    signed_in(kclient, user_with_totp)
    options(kclient, ADD_OPTIONS)
    before = everything(alice_key.user)
    response = kclient.post(ADD, {"name": "Junk", "credential": junk})
    assert response.status_code == 200 and 'class="error-summary"' in text(response)
    assert everything(alice_key.user) == before


@pytest.mark.parametrize("junk", JUNK[::3], ids=range(len(JUNK[::3])))
def test_junk_at_confirm_it_is_you_changes_nothing(
    kclient: Client, alice_key: EnrolledKey, user_with_totp: Enrolled, junk: str
) -> None:
    signed_in(kclient, user_with_totp)
    options(kclient, REAUTH_OPTIONS)
    before = session_proofs(kclient)
    response = kclient.post(
        "/account/confirm/", {"password": PASSWORD, "credential": junk, "next": "/account/"}
    )
    assert response.status_code == 200 and 'class="error-summary"' in text(response)
    assert session_proofs(kclient) == before


def test_a_missing_answer_is_asked_for(
    kclient: Client, alice_key: EnrolledKey, user_with_totp: Enrolled
) -> None:
    password_step(kclient)
    response = kclient.post("/login/code/", {"trust": "on"})
    assert "Use your security key first" in text(response)
    response = kclient.post("/login/code/?app=1", {"code": user_with_totp.code()})
    assert response.status_code == 302
    response = kclient.post(ADD, {"name": "No answer"})
    assert "Use your security key first" in text(response)
    response = kclient.post("/account/confirm/", {"password": PASSWORD, "next": "/"})
    assert "Use your security key first" in text(response)


def test_a_genuine_answer_to_the_wrong_ceremony_is_refused(
    kclient: Client, alice_key: EnrolledKey, user_with_totp: Enrolled
) -> None:
    """A signature made for "Confirm it is you" does not sign in, and the reverse."""
    password_step(kclient)
    for_signin = json.dumps(alice_key.soft.get(options(kclient, SIGNIN_OPTIONS), ORIGIN))
    response = kclient.post("/login/code/?app=1", {"code": user_with_totp.code()})
    assert response.status_code == 302
    # No challenge of "Confirm it is you" yet in this session…
    confirm = {"password": PASSWORD, "credential": for_signin, "next": "/"}
    assert "That took too long" in text(kclient.post("/account/confirm/", confirm))
    # …and with one, the sign-in's signature does not answer it.
    for_reauth = alice_key.soft.get(options(kclient, REAUTH_OPTIONS), ORIGIN)
    assert "This security key was not accepted." in text(kclient.post("/account/confirm/", confirm))
    kclient.post("/logout/")
    password_step(kclient)
    options(kclient, SIGNIN_OPTIONS)
    response = kclient.post("/login/code/", {"credential": json.dumps(for_reauth)})
    assert "This security key was not accepted." in text(response)


def test_another_accounts_key_number_is_not_found(
    kclient: Client, user_with_totp: Enrolled, alice_key: EnrolledKey
) -> None:
    bob = enrol_key(make_user("bob@example.com"), "Bob's key")
    signed_in(kclient, user_with_totp)
    for path in ("rename", "remove"):
        assert kclient.get(f"/account/security/keys/{bob.key.pk}/{path}/").status_code == 404
        response = kclient.post(f"/account/security/keys/{bob.key.pk}/{path}/", {"name": "Mine"})
        assert response.status_code == 404
        assert kclient.get(f"/account/security/keys/999999/{path}/").status_code == 404
    assert SecurityKey.objects.get(pk=bob.key.pk).name == "Bob's key"


def test_the_options_are_post_only(
    kclient: Client, user_with_totp: Enrolled, alice_key: EnrolledKey
) -> None:
    challenges = WebAuthnChallenge.objects.count()
    password_step(kclient)
    assert kclient.get(SIGNIN_OPTIONS).status_code == 405
    kclient.post("/login/code/?app=1", {"code": user_with_totp.code()})
    assert kclient.get(ADD_OPTIONS).status_code == 405
    assert kclient.get(REAUTH_OPTIONS).status_code == 405
    assert WebAuthnChallenge.objects.count() == challenges
    assert kclient.put(ADD).status_code == 405
    # Signed out, "Confirm it is you" has no options to give.
    assert key_client().post(REAUTH_OPTIONS)["Location"].startswith("/login/")


def test_options_for_an_account_without_a_key(
    kclient: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    signed_in(kclient, user_with_totp)
    response = kclient.post(REAUTH_OPTIONS)
    assert response.status_code == 400
    assert response.json()["error"] == "This account has no security key. Use another way below."
    assert not WebAuthnChallenge.objects.exists()
    assert kclient.post(SIGNIN_OPTIONS).status_code == 400  # signed in: no sign-in pending


def test_a_real_keys_id_with_a_broken_answer_is_refused(
    kclient: Client, alice_key: EnrolledKey
) -> None:
    """Junk that names one of the account's keys reaches the checks themselves (before the
    fix: a 500 when its response was not an object)."""
    password_step(kclient)
    key_id = alice_key.key.credential_id
    for response in ([1, 2], "text", {"clientDataJSON": 5}, None):
        options(kclient, SIGNIN_OPTIONS)
        junk = {"id": key_id, "rawId": key_id, "type": "public-key", "response": response}
        page = text(kclient.post("/login/code/", {"credential": json.dumps(junk)}))
        assert "This security key was not accepted." in page
    assert "_auth_user_id" not in kclient.session


def test_odd_transports_in_a_genuine_registration_are_ignored(
    kclient: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    """The library ignores transports that are not a list; so does Keyfob (before the fix:
    a 500 for a number)."""
    signed_in(kclient, user_with_totp)
    for n, transports in enumerate([5, "usb", {"usb": 1}, ["usb", "smoke signals", 3]]):
        answer = json.loads(created(kclient, SoftAuthenticator()))
        answer["response"]["transports"] = transports
        response = kclient.post(ADD, {"name": f"Key {n}", "credential": json.dumps(answer)})
        assert response["Location"] == "/account/security/"
    found = SecurityKey.objects.filter(user=user_with_totp.user).order_by("pk")
    assert [k.transports for k in found] == [[], [], [], ["usb"]]


def test_a_confirmation_running_out_inside_the_flow_asks_again(
    kclient: Client, user_with_totp: Enrolled, frozen_time: float, monkeypatch: Any
) -> None:
    """The window closing between the page's guard and the flow's own check is answered
    like the guard's refusal (not as a refused key)."""
    signed_in(kclient, user_with_totp)
    answer = created(kclient, SoftAuthenticator())

    def stale(*args: Any, **kwargs: Any) -> list[str]:
        raise account_flows.ReauthRequired()

    monkeypatch.setattr(flows, "register_key", stale)
    response = kclient.post(ADD, {"credential": answer})
    assert response["Location"].startswith("/account/confirm/")


def test_at_a_host_where_no_key_works_the_code_step_asks_for_the_app(
    user_with_totp: Enrolled, alice_key: EnrolledKey
) -> None:
    """Issue 22: at 127.0.0.1 the code step offered the key first, which failed on click; an
    account with an app is asked for its code there, and no key button is shown."""
    client = Client(HTTP_HOST="127.0.0.1")
    password_step(client)
    page = text(client.get("/login/code/"))
    assert 'name="code"' in page and "data-webauthn" not in page
    response = client.post("/login/code/", {"code": user_with_totp.code()})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    # At the relying party's host the key comes first, as before.
    at_home = key_client()
    password_step(at_home)
    assert "data-webauthn" in text(at_home.get("/login/code/"))
