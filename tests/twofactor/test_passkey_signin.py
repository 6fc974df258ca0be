"""'Sign in with a passkey' on /login/, through its pages with Django's test client: the
options endpoint, the form that posts the browser's answer, what a refusal says (never
whether the key belongs to an account), next=, and junk. The software authenticator
(tests/webauthn_soft.py) plays the browser; tests/twofactor/test_browser_passkeys.py drives
real Chromium."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from keyfob.accounts.models import SignIn, User
from keyfob.accounts.proofs import digest
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock, throttle
from keyfob.core.models import Throttle
from keyfob.twofactor.flows.webauthn import MAX_CHALLENGES_PER_ADDRESS
from keyfob.twofactor.forms import MAX_KEY_ANSWER
from keyfob.twofactor.models import SecurityKey, WebAuthnChallenge
from tests.conftest import PASSWORD, enrol, make_user
from tests.twofactor.passkeys import HOST, ORIGIN, register
from tests.twofactor.test_passwordless import lock_codes
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db

REFUSED = (
    "This key cannot sign you in on its own. Sign in with your e-mail address and password, "
    "then use the key when asked."
)


@pytest.fixture
def browser() -> Client:
    """A browser at the relying party id's host (the test client's "testserver" is not)."""
    return Client(HTTP_HOST=HOST)


def options(client: Client) -> dict[str, Any]:
    response = client.post("/login/passkey/options/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    return dict(response.json())


def answer(
    client: Client, soft: SoftAuthenticator, key: SecurityKey | None = None, **knobs: Any
) -> str:
    """Press "Sign in with a passkey": the options, then the authenticator's answer."""
    if key is not None:
        knobs.setdefault("credential_id", key.credential_id)
    return json.dumps(soft.get(options(client), ORIGIN, **knobs))


def post(client: Client, credential: str, next_url: str | None = None):  # type: ignore[no-untyped-def]
    data = {"credential": credential}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login/passkey/", data)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_login_page_offers_passkeys(browser: Client) -> None:
    html = browser.get("/login/?next=/account/").content.decode()
    assert 'autocomplete="username webauthn"' in html
    assert 'data-webauthn="conditional"' in html
    assert (
        'action="/login/passkey/"' in html and 'data-options-url="/login/passkey/options/"' in html
    )
    assert ">Sign in with a passkey</button>" in html
    # Hidden until the script finds WebAuthn: without script, nothing that cannot work.
    assert "data-webauthn-start hidden" in html
    assert html.count('name="next" value="/account/"') == 2
    assert 'src="/static/keyfob/webauthn.js"' in html


def test_the_options_are_a_post_and_name_no_account(browser: Client, user: User) -> None:
    assert browser.get("/login/passkey/options/").status_code == 405
    got = options(browser)
    assert got["rpId"] == "localhost" and got["allowCredentials"] == []
    assert got["userVerification"] == "required"
    assert not signed_in(browser)


def test_a_passkey_signs_in_without_the_password(
    browser: Client, user: User, frozen_time: float
) -> None:
    """Both factors in one: the full session (new id), a recent authentication, a
    phishing-resistant sign-in, and the activity names the key."""
    soft, _ = register(user, name="Laptop")
    credential = answer(browser, soft)
    before = browser.session.session_key
    response = post(browser, credential, "/account/")
    assert response.status_code == 302 and response["Location"] == "/account/"
    session = browser.session
    assert session.session_key != before
    assert session["_auth_user_id"] == str(user.pk)
    # The sign-in record: one proof, the passkey (which verified its user), made now.
    signin = SignIn.objects.get(session_digest=digest(session.session_key))
    proof = signin.proofs.get()
    assert (proof.factor, proof.authenticator_name, proof.user_verified) == (
        "passkey",
        "Laptop",
        True,
    )
    assert proof.at == clock.now() and proof.authenticator_kind == "key"
    assert browser.get("/account/security/keys/add/").status_code == 200  # recent
    event = SecurityEvent.objects.get(user=user, kind=EventKind.SIGNIN_OK)
    assert event.detail == {"second_factor": "passkey", "authenticator": "Laptop"}
    assert browser.get("/account/security/").status_code == 200


def test_a_passkey_overrides_a_half_done_password_step(
    browser: Client, user: User, frozen_time: float
) -> None:
    """Password typed, then the passkey instead of the code: signed in by the passkey."""
    from tests.conftest import enrol

    enrol(user)
    soft, _ = register(user)
    browser.post("/login/", {"email": user.email, "password": "correct horse battery staple"})
    assert browser.session.get("keyfob.pending")
    assert post(browser, answer(browser, soft)).status_code == 302
    assert signed_in(browser) and "keyfob.pending" not in browser.session


@pytest.mark.parametrize(
    "forged",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", ""],
)
def test_next_is_the_logins(browser: Client, user: User, forged: str, frozen_time: float) -> None:
    soft, _ = register(user)
    response = post(browser, answer(browser, soft), forged)
    assert response["Location"] == "/account/security/"


def refused_page(response: Any) -> str:
    assert response.status_code == 200
    html = str(response.content.decode())
    assert "<title>Error:" in html
    assert 'data-webauthn-status role="alert" class="error"' in html
    return html


def test_refusals_do_not_say_whether_a_key_belongs_to_an_account(
    browser: Client, user: User, frozen_time: float
) -> None:
    """An unknown passkey, one registered without user verification, a non-resident key,
    one that did not verify its user now, a bad signature and a deactivated account's key
    all get the same page: "use your password, then the key"."""
    unverified, plain = register(user, user_verified=False)
    usb, key = register(user, resident=False)
    soft, _ = register(user)
    stranger = SoftAuthenticator(transports=("internal",))
    stranger.create(
        {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": "AAAA"},
        ORIGIN,
        resident=True,
    )
    cases = {
        "unknown": lambda: answer(browser, stranger),
        "no uv when added": lambda: answer(browser, unverified, plain),
        "not resident": lambda: answer(browser, usb, key),
        "no uv now": lambda: answer(browser, soft, user_verified=False),
        "bad signature": lambda: answer(browser, soft, bad_signature=True),
    }
    pages = {}
    for case, make in cases.items():
        html = refused_page(post(browser, make()))
        assert REFUSED in html, case
        assert not signed_in(browser), case
        pages[case] = html.split("data-webauthn-status", 1)[1].split("</p>")[0]
    assert len(set(pages.values())) == 1, pages.keys()
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert REFUSED in refused_page(post(browser, answer(browser, soft)))


def test_a_replayed_or_late_answer_says_to_try_again(
    browser: Client, user: User, frozen_time: float
) -> None:
    soft, _ = register(user)
    credential = answer(browser, soft)
    assert post(browser, credential).status_code == 302
    # Again after signing out: its challenge was spent, and went with the session.
    browser.post("/logout/")
    html = refused_page(post(browser, credential))
    assert "Your passkey sign-in took too long. Please try again." in html
    # From another session, with a challenge of its own: signed over another one, refused
    # like any wrong answer.
    again = Client(HTTP_HOST=HOST)
    options(again)
    assert REFUSED in refused_page(post(again, credential))
    late = Client(HTTP_HOST=HOST)
    credential = answer(late, soft)
    with clock.frozen(frozen_time + 301):
        assert "took too long" in refused_page(post(late, credential))
    assert not signed_in(again) and not signed_in(late)


def test_a_copied_key_is_named_to_its_holder(
    browser: Client, user: User, frozen_time: float
) -> None:
    soft, _ = register(user)
    post(browser, answer(browser, soft))
    browser.post("/logout/")
    html = refused_page(post(browser, answer(browser, soft, sign_count=1)))
    assert "it may have been copied" in html


def test_a_throttled_account_is_told_to_wait(
    browser: Client, user: User, frozen_time: float
) -> None:
    """Locked by wrong codes (on any channel), the account's holder is told to wait once
    their key has signed; wrong answers without the password do not lock it (issue 22)."""
    soft, _ = register(user)
    for _ in range(5):
        assert REFUSED in refused_page(post(browser, answer(browser, soft, bad_signature=True)))
    assert throttle.consecutive_failures(throttle.CODE, str(user.pk)) == 0
    lock_codes(user)
    html = refused_page(post(browser, answer(browser, soft)))
    assert "Too many failed attempts. Try again in" in html
    assert not signed_in(browser)


def test_a_known_credential_id_neither_locks_the_account_nor_reads_differently(
    user: User, frozen_time: float
) -> None:
    """Issue 22: whoever knows Alice's credential id posts answers naming it, without her
    key. The refusals read exactly as for an id no one holds, at every step (the address is
    told to wait at the same point), and Alice's codes stay usable: nothing counted on her
    account."""
    enrolled = enrol(user)
    soft, _ = register(user)
    nobody = SoftAuthenticator(transports=("internal",))
    register(make_user("zed@example.com"), nobody)
    nobody.credentials[-1].id = b"an id no account holds"

    def texts(soft: SoftAuthenticator, address: str, **knobs: Any) -> list[str]:
        client = Client(HTTP_HOST=HOST, REMOTE_ADDR=address)
        pages = [refused_page(post(client, answer(client, soft, **knobs))) for _ in range(24)]
        return [re.findall(r'role="alert" class="error"[^>]*>([^<]*)<', p) for p in pages]

    known = texts(soft, "203.0.113.5", bad_signature=True)
    unknown = texts(nobody, "203.0.113.6")
    assert known == unknown
    assert known[0] == [REFUSED] and "Too many failed attempts" in known[-1][0]
    assert throttle.consecutive_failures(throttle.CODE, str(user.pk)) == 0
    alice = Client(HTTP_HOST=HOST, REMOTE_ADDR="198.51.100.20")
    alice.post("/login/", {"email": user.email, "password": PASSWORD})
    response = alice.post("/login/code/?app=1", {"code": enrolled.code()})
    assert response.status_code == 302 and signed_in(alice)


JUNK = [
    {},
    {"credential": ""},
    {"credential": "not json"},
    {"credential": "[]"},
    {"credential": "null"},
    {"credential": '{"rawId": 5}'},
    {"credential": '{"rawId": "!!!"}'},
    {"credential": '{"rawId": "\\u0000"}'},
    {"credential": "x" * (MAX_KEY_ANSWER + 1)},
    # Nested deeper than Python's recursion limit: a RecursionError, not a ValueError.
    {"credential": "[" * 20_000},
    {"credential": ["two", "values"]},
]


@pytest.mark.parametrize("junk", JUNK, ids=range(len(JUNK)))
def test_junk_is_refused_clearly(browser: Client, user: User, junk: dict[str, Any]) -> None:
    register(user)
    options(browser)
    html = refused_page(browser.post("/login/passkey/", junk))
    assert REFUSED in html or "Your browser sent no passkey" in html
    assert not signed_in(browser)


def _shapes(credential: dict[str, Any]) -> list[object]:
    """A real answer bent out of shape, one part at a time (the key is a known one, so
    each reaches the checks past the credential id)."""
    response = credential["response"]
    return [
        {**credential, "response": []},
        {**credential, "response": None},
        {**credential, "response": {**response, "userHandle": 5}},
        {**credential, "response": {**response, "userHandle": ["x"]}},
        {**credential, "response": {**response, "clientDataJSON": 7}},
        {**credential, "response": {**response, "clientDataJSON": "e30"}},  # {}
        {**credential, "response": {**response, "authenticatorData": "AA"}},
        {**credential, "response": {**response, "signature": {"a": 1}}},
        {**credential, "type": "password"},
        {**credential, "id": 3},
        {k: v for k, v in credential.items() if k != "response"},
    ]


def test_a_known_keys_answer_out_of_shape_is_refused_clearly(
    browser: Client, user: User, frozen_time: float
) -> None:
    soft, _ = register(user)
    for i in range(len(_shapes(json.loads(answer(browser, soft))))):
        Throttle.objects.all().delete()  # each is a wrong answer: not the point here
        bent = _shapes(json.loads(answer(browser, soft)))[i]
        response = post(browser, json.dumps(bent))
        assert response.status_code == 200, i
        assert REFUSED in refused_page(response), i
        assert not signed_in(browser)


def test_a_page_outside_the_relying_party_is_refused(user: User) -> None:
    """Only pages under KEYFOB_WEBAUTHN_RP_ID ("localhost") may use a key: 127.0.0.1 is an
    allowed host, not under it."""
    client = Client(HTTP_HOST="127.0.0.1")
    response = client.post("/login/passkey/options/")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Passkeys cannot be used at this address. Sign in with your password."
    }
    response = post(client, '{"rawId": "AAAA"}')
    html = response.content.decode()
    assert response.status_code == 200 and "<title>Error:" in html
    # No passkey form there (issue 22): the refusal stands alone, above the password form.
    assert '<p role="alert" class="error">Passkeys cannot be used at this address.' in html
    assert not WebAuthnChallenge.objects.exists()


def test_the_form_page_is_the_logins(browser: Client, user: User, frozen_time: float) -> None:
    """A GET goes to the sign-in page (with its next=); a signed-in browser goes on."""
    response = browser.get("/login/passkey/?next=/account/")
    assert response["Location"] == "/login/?next=%2Faccount%2F"
    soft, _ = register(user)
    post(browser, answer(browser, soft))
    assert browser.post("/login/passkey/", {"next": "/account/"})["Location"] == "/account/"


def test_another_accounts_key_signs_in_its_own_account(
    browser: Client, user: User, frozen_time: float
) -> None:
    """Two accounts' passkeys on one device: the one picked says whose it is."""
    bob = make_user("bob@example.com")
    soft, mine = register(user)
    register(bob, soft)
    post(browser, answer(browser, soft, mine))
    assert browser.session["_auth_user_id"] == str(user.pk)


def test_the_message_table_has_a_text_for_every_refusal() -> None:
    """Every error the passkey sign-in can meet has its text, and the refusals that would
    tell a known key from an unknown one share one."""
    from keyfob.otp import CodeReused, Throttled
    from keyfob.twofactor import flows
    from keyfob.twofactor.messages import PASSKEY_MESSAGES, passkey_error

    reasons = [
        flows.KeyRefused(),
        flows.NotPasswordless(),
        flows.KeyCloned(),
        flows.ChallengeExpired(),
        flows.WrongHost(),
        flows.NotEnrolled(),
        CodeReused(),
        Throttled(90),
    ]
    for exc in reasons:
        assert exc.code in PASSKEY_MESSAGES, exc.code
    assert passkey_error(flows.NotPasswordless()) == passkey_error(flows.KeyRefused()) == REFUSED
    assert passkey_error(flows.NotEnrolled()) == REFUSED
    assert "1 minute" in passkey_error(Throttled(60))
    distinct = {passkey_error(e) for e in reasons}
    assert len(distinct) == len(reasons) - 2  # NotPasswordless and NotEnrolled read as refused


def test_one_address_holds_a_bounded_number_of_challenges(frozen_time: float) -> None:
    """Anyone may ask for a passkey challenge, and each is a row: a client that drops its
    cookie each time is stopped at 30 live ones from its address (429, said in words) until
    the oldest expires; another address, and a browser asking again in its own session, are
    not affected."""
    for _ in range(MAX_CHALLENGES_PER_ADDRESS):
        assert Client(HTTP_HOST=HOST).post("/login/passkey/options/").status_code == 200
    refused = Client(HTTP_HOST=HOST).post("/login/passkey/options/")
    assert refused.status_code == 429 and "Try again in" in refused.json()["error"]
    assert WebAuthnChallenge.objects.count() == MAX_CHALLENGES_PER_ADDRESS
    elsewhere = Client(HTTP_HOST=HOST, REMOTE_ADDR="192.0.2.77")
    assert elsewhere.post("/login/passkey/options/").status_code == 200
    with clock.frozen(frozen_time + 301):
        assert Client(HTTP_HOST=HOST).post("/login/passkey/options/").status_code == 200


def test_a_browser_asking_again_replaces_its_challenge(frozen_time: float) -> None:
    client = Client(HTTP_HOST=HOST)
    for _ in range(40):
        assert client.post("/login/passkey/options/").status_code == 200
    assert WebAuthnChallenge.objects.count() == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "testserver"])
def test_a_host_where_no_passkey_can_work_offers_none(host: str, user: User) -> None:
    """Issue 22: at 127.0.0.1 (not the relying party id) the page offered "Sign in with a
    passkey", which failed on click, and asked for a challenge as it loaded. Nothing of it is
    there now; the password form is."""
    register(user)
    html = Client(HTTP_HOST=host).get("/login/").content.decode()
    assert 'name="password"' in html and 'autocomplete="username"' in html
    assert "Sign in with a passkey" not in html
    assert "data-webauthn" not in html and "username webauthn" not in html
    assert "/login/passkey/" not in html
    # Posted anyway, the answer is refused in words, with the password form.
    refused = Client(HTTP_HOST=host).post("/login/passkey/", {"credential": "{}"})
    assert refused.status_code == 200
    assert "Passkeys cannot be used at this address." in refused.content.decode()
    # At the relying party's host the page offers them (test_the_login_page_offers_passkeys).
    assert "Sign in with a passkey" in Client(HTTP_HOST=HOST).get("/login/").content.decode()
