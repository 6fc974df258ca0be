"""Security keys in real headless Chromium, with Chrome's virtual authenticator through the
DevTools protocol (tests.clients.VirtualAuthenticator: CTAP2 over USB, no resident key
unless said): the pages run webauthn.js against Keyfob's own endpoints at
http://localhost:PORT (a secure context; RP id "localhost"). axe-core checks each new page
state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from keyfob.audit import mailer
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor import flows
from keyfob.twofactor.models import SecurityKey
from tests.clients import VirtualAuthenticator
from tests.conftest import PASSWORD, enrol, make_user
from tests.site.test_browser_a11y import code_step, serious_violations, sign_in, sign_out
from tests.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
T0 = 1_900_000_005.0  # the middle of a 30-second step
SECURITY = re.compile(r"/account/security/$")


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """A new browser (its own cookies and its own virtual authenticators)."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(
            locale="en-GB", viewport={"width": 1200, "height": 900}, **options
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def usb_key(page: Any) -> VirtualAuthenticator:
    """A USB security key with a PIN, that keeps no account (no resident key)."""
    return VirtualAuthenticator.add(page, resident_key=False, user_verification=True)


def no_serious_violations(page: Any, state: str) -> None:
    assert serious_violations(page) == [], state


def add_key_from_security(page: Any, name: str) -> None:
    """From the Security page (2FA on): "Add a security key", a name, the ceremony."""
    page.get_by_role("link", name="Add a security key").click()
    page.wait_for_url(re.compile(r"/account/security/keys/add/$"))
    page.get_by_role("button", name="Add this security key").wait_for()
    no_serious_violations(page, "add a security key")
    page.get_by_label("Name of this security key").fill(name)
    page.get_by_role("button", name="Add this security key").click()
    page.wait_for_url(SECURITY)
    page.get_by_text(f"Your security key “{name}” is added.").wait_for()


def key_step(page: Any, *, trust: bool = False) -> None:
    """At the code step, the security key first."""
    page.wait_for_url(re.compile(r"/login/code/$"))
    if trust:
        page.get_by_label("Trust this browser for 30 days").check()
    page.get_by_role("button", name="Use your security key").click()


def events(user: Any, kind: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind).order_by("pk"))


def test_add_a_key_sign_in_with_it_rename_and_remove(open_page: Any, live_server: Any) -> None:
    base = live_server.url
    carol = enrol(make_user("carol@example.com", phone="+33123456789"))
    page = open_page()
    key = usb_key(page)
    with clock.frozen(T0):
        sign_in(page, base, "carol@example.com")
        code_step(page, carol)
        add_key_from_security(page, "Blue key")
        rows = page.locator("#authenticators-table tbody tr")
        assert rows.count() == 2
        assert "Security key" in rows.nth(1).inner_text() and "No" in rows.nth(1).inner_text()
        no_serious_violations(page, "security, an app and a key")
        stored = SecurityKey.objects.get(user=carol.user)
        assert key.credential_ids() == [stored.credential_id]
        assert (stored.transports, stored.user_verified, stored.discoverable) == (
            ["usb"],
            True,
            False,
        )
        sign_out(page)

        # Password, then the key: the code step offers it first.
        sign_in(page, base, "carol@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.get_by_role("button", name="Use your security key").wait_for()
        assert page.get_by_role("link", name="Use a code from your authenticator app").count()
        assert page.get_by_role("link", name="Use a recovery code").count() == 1
        no_serious_violations(page, "code step, security key")
        key_step(page, trust=True)
        page.wait_for_url(SECURITY)
        page.locator("#activity-table").get_by_text("with “Blue key”").first.wait_for()
        [signed_in] = events(carol.user, EventKind.SIGNIN_OK)[-1:]
        assert signed_in.detail == {"second_factor": "security_key", "authenticator": "Blue key"}
        assert page.locator("#browsers-table tbody tr").count() == 1  # trusted, like codes

        page.get_by_role("link", name="Rename Blue key").click()
        page.get_by_label("Name of this security key").wait_for()
        no_serious_violations(page, "rename a security key")
        page.get_by_label("Name of this security key").fill("YubiKey")
        page.get_by_role("button", name="Rename").click()
        page.wait_for_url(SECURITY)
        page.get_by_role("link", name="Remove YubiKey").click()
        page.get_by_role("heading", name="Remove a security key").wait_for()
        no_serious_violations(page, "remove a security key")
        page.get_by_role("button", name="Remove").click()
        page.wait_for_url(SECURITY)
        page.get_by_text("The security key “YubiKey” is removed.").wait_for()
        assert not SecurityKey.objects.filter(user=carol.user).exists()
        assert page.locator("#authenticators-table tbody tr").count() == 1


def test_2fa_on_with_a_key_alone_then_sign_in_and_confirm_with_it(
    open_page: Any, live_server: Any
) -> None:
    base = live_server.url
    dave = make_user("dave@example.com", phone="+33612345678")
    page = open_page()
    usb_key(page)
    with clock.frozen(T0):
        sign_in(page, base, "dave@example.com")
        page.wait_for_url(SECURITY)
        page.get_by_role("link", name="Enable two-factor authentication").click()
        page.get_by_role("heading", name="Use a security key or passkey").wait_for()
        no_serious_violations(page, "setup: an app or a key")
        page.get_by_role("link", name="Use a security key or passkey").click()
        page.get_by_role("heading", name="Enable two-factor authentication").wait_for()
        page.get_by_role("button", name="Add this security key").wait_for()
        no_serious_violations(page, "the first security key")
        page.get_by_role("button", name="Add this security key").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
        page.get_by_label("I have saved these recovery codes somewhere safe").check()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(SECURITY)
        page.get_by_text("Each sign-in asks for your security key after your password.").wait_for()
        assert flows.has_2fa(dave) and flows.recovery_codes_left(dave) == flows.RECOVERY_CODES
        # Only a key: its Remove is turning 2FA off, so the page offers none.
        assert page.get_by_role("link", name="Remove Security key").count() == 0
        sign_out(page)

        sign_in(page, base, "dave@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        # No app: no link to an app's code.
        assert page.get_by_role("link", name="Use a code from your authenticator app").count() == 0
        key_step(page)
        page.wait_for_url(SECURITY)

    # Later, a sensitive change: "Confirm it is you" takes the password and the key.
    with clock.frozen(T0 + settings.KEYFOB_REAUTH_SECONDS + 60):
        page.get_by_role("link", name="Add a security key").click()
        page.wait_for_url(re.compile(r"/account/confirm/"))
        page.get_by_text("This change needs your password and your security key.").wait_for()
        no_serious_violations(page, "confirm it is you, security key")
        page.get_by_role("button", name="Confirm with your security key").click()
        page.get_by_text("Enter your password.").first.wait_for()
        no_serious_violations(page, "confirm it is you, no password")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm with your security key").click()
        page.wait_for_url(re.compile(r"/account/security/keys/add/$"))
        # The last one, by its address: removing it is turning 2FA off.
        pk = SecurityKey.objects.get(user=dave).pk
        page.goto(f"{base}/account/security/keys/{pk}/remove/")
        page.wait_for_url(re.compile(r"/account/security/disable/$"))


def test_another_accounts_key_is_refused(open_page: Any, live_server: Any) -> None:
    """Bob's credential, put into the virtual authenticator of Alice's browser, answers
    Alice's sign-in (the browser is the attacker's: it names Bob's key in the request)."""
    base = live_server.url
    alice = enrol(make_user("alice@example.com"))
    bob = enrol(make_user("bob@example.com"))
    bob_page = open_page()
    bob_key = usb_key(bob_page)
    alice_page = open_page()
    alice_key = usb_key(alice_page)
    with clock.frozen(T0):
        for page, who in ((bob_page, bob), (alice_page, alice)):
            sign_in(page, base, who.user.email)
            code_step(page, who)
            add_key_from_security(page, "My key")
            sign_out(page)
        [bobs] = bob_key.credentials()
        alice_key.add_credential(bobs)
        bob_id = SecurityKey.objects.get(user=bob.user).credential_id

        def name_bobs_key(route: Any) -> None:
            asked = route.fetch().json()
            asked["allowCredentials"] = [{"type": "public-key", "id": bob_id}]
            route.fulfill(json=asked)

        alice_page.route("**/login/code/key-options/", name_bobs_key)
        sign_in(alice_page, base, "alice@example.com")
        key_step(alice_page)
        alice_page.get_by_text("This security key was not accepted.").wait_for()
        no_serious_violations(alice_page, "code step, key refused")
        assert "/login/code/" in alice_page.url
        assert [e.detail for e in events(alice.user, EventKind.KEY_WRONG)] == [{}]
        assert not events(bob.user, EventKind.KEY_WRONG)
        assert SecurityKey.objects.get(user=bob.user).last_used_at is None


def test_a_replayed_answer_is_refused(open_page: Any, live_server: Any) -> None:
    base = live_server.url
    erin = enrol(make_user("erin@example.com"))
    page = open_page()
    usb_key(page)
    posted: list[str] = []

    def capture(route: Any) -> None:
        if route.request.method == "POST":
            posted.append(route.request.post_data or "")
        route.continue_()

    with clock.frozen(T0):
        sign_in(page, base, "erin@example.com")
        code_step(page, erin)
        add_key_from_security(page, "Key")
        sign_out(page)
        page.route("**/login/code/", capture)
        sign_in(page, base, "erin@example.com")
        key_step(page)
        page.wait_for_url(SECURITY)
        sign_out(page)
        page.unroute("**/login/code/")
        from urllib.parse import parse_qs

        [answer] = parse_qs(posted[-1])["credential"]
        assert json.loads(answer)["type"] == "public-key"

        # The same answer again, in a new sign-in: typed into the form by hand.
        sign_in(page, base, "erin@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.evaluate(
            """answer => {
                const form = document.querySelector("form[data-webauthn]");
                form.elements.namedItem("credential").value = answer;
                HTMLFormElement.prototype.submit.call(form);
            }""",
            answer,
        )
        page.get_by_text("That took too long, or the page was sent twice.").wait_for()
        assert "/login/code/" in page.url
        no_serious_violations(page, "code step, answer replayed")
        assert len(events(erin.user, EventKind.SIGNIN_OK)) == 2  # the code's and the key's


def test_a_counter_going_backwards_is_refused_and_told(
    open_page: Any, live_server: Any, smtp: SmtpServer
) -> None:
    base = live_server.url
    fay = enrol(make_user("fay@example.com"))
    page = open_page()
    key = usb_key(page)
    with clock.frozen(T0):
        sign_in(page, base, "fay@example.com")
        code_step(page, fay)
        add_key_from_security(page, "Old key")
        sign_out(page)
        [copy] = key.credentials()  # a copy taken now…
        for _ in range(2):  # …then the real key signs in twice
            sign_in(page, base, "fay@example.com")
            key_step(page)
            page.wait_for_url(SECURITY)
            sign_out(page)
        stored = SecurityKey.objects.get(user=fay.user)
        assert stored.sign_count >= 2 and stored.sign_count > copy["signCount"]
        mailer.send_pending()
        smtp.inbox.clear()

        # The copy answers: its counter is behind the one the real key reached.
        key.remove_credential(copy["credentialId"])
        key.add_credential(copy)
        sign_in(page, base, "fay@example.com")
        key_step(page)
        page.get_by_text("it may have been copied").wait_for()
        assert "/login/code/" in page.url
        assert [e.detail for e in events(fay.user, EventKind.KEY_CLONE)] == [
            {"authenticator": "Old key"}
        ]
        assert SecurityKey.objects.get(user=fay.user).sign_count == stored.sign_count
        mailer.send_pending()
        [mail] = smtp.inbox.wait_for(1)
        assert mail["Subject"].endswith("Your security key may have been copied")
        assert mail["To"] == "fay@example.com"
        assert "Old key" in mail.get_body(preferencelist=("plain",)).get_content()

    with clock.frozen(T0 + 30):
        # The activity reads it as a failed attempt, naming the key.
        page.get_by_role("link", name="Use a code from your authenticator app").click()
        page.get_by_label("Authentication code").fill(fay.code())
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(SECURITY)
        row = page.locator("#activity-table tr.failed-attempt").first
        assert "Failed: Security key refused: it may have been copied" in row.inner_text()
        assert "Old key" in row.inner_text()


def test_without_javascript_or_webauthn_the_page_says_why(open_page: Any, live_server: Any) -> None:
    base = live_server.url
    gus = enrol(make_user("gus@example.com"))
    with clock.frozen(T0):
        # No script: <noscript> says so; no button to press.
        page = open_page(java_script_enabled=False)
        sign_in(page, base, "gus@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.get_by_label("Authentication code").fill(gus.code())
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(SECURITY)
        page.goto(f"{base}/account/security/keys/add/")
        # (Playwright's text locators skip <noscript>; the page's text shows it.)
        page.locator("noscript").wait_for(state="attached")
        assert "Security keys and passkeys need JavaScript" in page.inner_text("main")
        assert page.get_by_role("button", name="Add this security key").count() == 0
        # A browser without WebAuthn: the script shows the text and keeps the button hidden.
        page = open_page()
        page.add_init_script("delete window.PublicKeyCredential;")
        sign_in(page, base, "gus@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        with clock.frozen(T0 + 30):
            page.get_by_label("Authentication code").fill(gus.code())
            page.get_by_role("button", name="Verify").click()
            page.wait_for_url(SECURITY)
            page.goto(f"{base}/account/security/keys/add/")
            page.get_by_text("This browser cannot use security keys or passkeys").wait_for()
            assert page.get_by_role("button", name="Add this security key").count() == 0
            no_serious_violations(page, "add a security key, no WebAuthn")
