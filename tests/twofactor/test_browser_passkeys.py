"""Signing in with a passkey and no password, in headless Chromium with Chrome's virtual
authenticator (tests.clients.VirtualAuthenticator, CTAP2) and webauthn.js: the button, the
passkey autofill on the e-mail field, keys that may not sign in alone, and the staff rule.

Most keys are added through Keyfob's own registration flow with the software authenticator
(tests/twofactor/passkeys.py), then their private keys are put into Chrome's authenticator
(WebAuthn.addCredential): the account's row is what a real registration stores, and Chrome
signs the sign-in. A staff member without a key adds one on "Add a security key" itself
(tests/twofactor/test_browser_security_keys.py has that page's own tests).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor.models import SecurityKey
from tests.clients import VirtualAuthenticator, b64url_to_cdp
from tests.conftest import PASSWORD, Enrolled, enrol, make_user
from tests.site.test_browser_a11y import serious_violations, sign_in
from tests.twofactor.passkeys import register, staff_invite
from tests.webauthn_soft import SoftAuthenticator, b64url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

T0 = 1_900_000_005.0  # the middle of a 30-second step
NOT_ALONE = (
    "This key cannot sign you in on its own. Sign in with your e-mail address and password, "
    "then use the key when asked."
)
# A browser without passkey autofill: the button is the only way (and a refused key is not
# offered again by itself on the page that says so, as Chrome's virtual authenticator,
# which answers without being asked, would otherwise do).
NO_AUTOFILL = "PublicKeyCredential.isConditionalMediationAvailable = async () => false;"


@pytest.fixture
def base(live_server: Any) -> Iterator[str]:
    """The live server (http://localhost:PORT: a secure context whose host is the relying
    party id), with Keyfob's clock held."""
    assert re.fullmatch(r"http://localhost:\d+", live_server.url)
    with clock.frozen(T0):
        yield live_server.url


def plug(
    page: Any,
    soft: SoftAuthenticator,
    *,
    transport: str = "internal",
    resident_key: bool = True,
) -> VirtualAuthenticator:
    """Plug into ``page`` a CTAP2 authenticator that verifies its user, holding the keys
    ``soft`` made (same ids, private keys, user handles and counters)."""
    chrome = VirtualAuthenticator.add(
        page, resident_key=resident_key, user_verification=True, transport=transport
    )
    for held in soft.credentials:
        pkcs8 = held.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        chrome.add_credential(
            {
                "credentialId": b64url_to_cdp(held.id_b64),
                "isResidentCredential": held.resident,
                "rpId": "localhost",
                "privateKey": b64url_to_cdp(b64url(pkcs8)),
                "userHandle": b64url_to_cdp(b64url(held.user_handle)),
                "signCount": held.sign_count,
            }
        )
    return chrome


def app_code_step(page: Any, base: str, who: Enrolled) -> None:
    """The code step with the authenticator app's code (``?app=1``: even where the page
    offers the account's security key first)."""
    page.wait_for_url(f"{base}/login/code/")
    page.goto(f"{base}/login/code/?app=1")
    page.get_by_label("Authentication code").fill(who.code())
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/account/security/")


def passkey_button(page: Any) -> Any:
    return page.get_by_role("button", name="Sign in with a passkey")


def status(page: Any) -> Any:
    return page.locator("[data-webauthn-status]")


def test_a_passkey_signs_in_without_the_password(page: Any, base: str) -> None:
    """A phone's passkey (platform, resident, verifying its user): one press, no password,
    no code; the activity names it and the key's counter follows Chrome's."""
    user = make_user("carol@example.com")
    soft, key = register(user, name="Carol's laptop")
    plug(page, soft)
    page.add_init_script(NO_AUTOFILL)
    page.goto(f"{base}/login/?next=/account/")
    assert serious_violations(page) == []
    passkey_button(page).click()
    page.wait_for_url(f"{base}/account/")
    page.goto(f"{base}/account/security/")
    row = page.locator("#activity-table tbody tr", has_text="Signed in")
    row.wait_for()
    assert "with “Carol's laptop”" in row.inner_text()
    event = SecurityEvent.objects.get(user=user, kind=EventKind.SIGNIN_OK)
    assert event.detail == {"second_factor": "passkey", "authenticator": "Carol's laptop"}
    key.refresh_from_db()
    assert key.sign_count == 1 and key.last_used_at is not None
    assert serious_violations(page) == []


def test_the_passkey_autofill_signs_in(page: Any, base: str) -> None:
    """Chrome's virtual authenticator supports conditional mediation (a platform one:
    transport "internal"), and answers the e-mail field's passkey autofill at once, as a
    person picking their passkey in it would: the page signs in without a press."""
    user = make_user("carol@example.com")
    soft, _ = register(user)
    plug(page, soft)
    page.goto(f"{base}/login/?next=/account/")
    page.wait_for_url(f"{base}/account/")
    assert page.evaluate("PublicKeyCredential.isConditionalMediationAvailable()") is True
    assert SecurityEvent.objects.get(user=user, kind=EventKind.SIGNIN_OK).detail == {
        "second_factor": "passkey",
        "authenticator": "Security key",
    }


def test_a_key_added_without_user_verification_needs_the_password(page: Any, base: str) -> None:
    """A key that did not verify its user when added is refused alone, even verifying now,
    with the page saying to use the password, then the key; after the password, the same
    key signs in at the code step."""
    carol = enrol(make_user("carol@example.com"))
    soft, key = register(carol.user, user_verified=False)
    assert not key.user_verified
    plug(page, soft)
    page.add_init_script(NO_AUTOFILL)
    page.goto(f"{base}/login/")
    passkey_button(page).click()
    page.wait_for_url(f"{base}/login/passkey/")
    status(page).get_by_text(NOT_ALONE).wait_for()
    assert page.title().startswith("Error:")
    assert serious_violations(page) == []
    assert not SecurityEvent.objects.filter(kind=EventKind.SIGNIN_OK).exists()
    assert SecurityEvent.objects.filter(user=carol.user, kind=EventKind.KEY_WRONG).count() == 1
    # The sign-in form is right there; the code step offers the key first.
    page.get_by_label("Email").fill("carol@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/login/code/")
    page.get_by_role("button", name="Use your security key").click()
    page.wait_for_url(f"{base}/account/security/")
    assert SecurityEvent.objects.get(user=carol.user, kind=EventKind.SIGNIN_OK).detail == {
        "second_factor": "security_key",
        "authenticator": "Security key",
    }


def test_a_key_that_keeps_no_account_finds_nothing_to_offer(page: Any, base: str) -> None:
    """A USB security key whose credential is not resident: Chrome has nothing to answer a
    sign-in that names no key with, and the page says so; nothing reaches the account."""
    user = make_user("carol@example.com")
    soft, key = register(user, resident=False)
    assert not key.discoverable
    plug(page, soft, transport="usb", resident_key=False)
    page.add_init_script(NO_AUTOFILL)
    page.goto(f"{base}/login/")
    passkey_button(page).click()
    status(page).get_by_text("No passkey was used").wait_for()
    assert page.url == f"{base}/login/"
    assert passkey_button(page).is_enabled()  # ready for another try
    assert (
        not SecurityEvent.objects.filter(user=user)
        .exclude(kind=EventKind.KEY_ADDED)
        .exclude(kind=EventKind.TWOFACTOR_ON)
        .exists()
    )


def test_without_webauthn_the_login_page_offers_only_the_password(page: Any, base: str) -> None:
    page.add_init_script("delete window.PublicKeyCredential")
    page.goto(f"{base}/login/")
    page.get_by_label("Email").wait_for()
    assert passkey_button(page).count() == 0  # hidden: not offered
    assert status(page).text_content() == ""
    assert serious_violations(page) == []


# The staff rule (KEYFOB_STAFF_PHISHING_RESISTANT, on by default) --------------------------


@pytest.fixture
def sam(transactional_db: None) -> Enrolled:
    return enrol(make_user("sam@support.example", is_staff=True))


def test_staff_signed_in_with_a_passkey_open_the_desk(page: Any, base: str, sam: Enrolled) -> None:
    soft, _ = register(sam.user)
    plug(page, soft)
    page.add_init_script(NO_AUTOFILL)
    page.goto(f"{base}/login/")
    passkey_button(page).click()
    page.wait_for_url(f"{base}/account/security/")
    page.get_by_role("link", name=re.compile("^Support")).click()
    page.wait_for_url(f"{base}/support/")
    page.get_by_role("heading", name="Support").first.wait_for()
    assert serious_violations(page) == []


def test_staff_signed_in_with_a_code_confirm_with_their_key(
    page: Any, base: str, sam: Enrolled
) -> None:
    """The menu still shows Support; the desk sends them to "Confirm it is you", which says
    why and takes the key; then the desk opens."""
    soft, _ = register(sam.user, resident=False)
    plug(page, soft, transport="usb", resident_key=False)
    sign_in(page, base, sam.user.email)
    app_code_step(page, base, sam)
    page.get_by_role("link", name=re.compile("^Support")).click()
    page.wait_for_url(f"{base}/account/confirm/?next=%2Fsupport%2F")
    page.get_by_text("Staff pages need a sign-in made with your security key or passkey").wait_for()
    assert serious_violations(page) == []
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm with your security key").click()
    page.wait_for_url(f"{base}/support/")
    page.get_by_role("heading", name="Support").first.wait_for()


def pages_opened(page: Any) -> list[str]:
    """The paths of the pages the tab loads from now on (each page the person sees)."""
    opened: list[str] = []
    page.on(
        "framenavigated",
        lambda frame: (
            opened.append(re.sub(r"^https?://[^/]+", "", frame.url))
            if frame == page.main_frame
            else None
        ),
    )
    return opened


def test_staff_without_a_key_add_one_then_open_the_desk(
    page: Any, base: str, sam: Enrolled
) -> None:
    """Issue 24: one page says why and adds the key with the enrolment code, then the desk
    opens (before: "Add a security key", Security, "Confirm it is you" with the key just
    added, then the desk)."""
    VirtualAuthenticator.add(page, resident_key=False, user_verification=True)
    sign_in(page, base, sam.user.email)
    app_code_step(page, base, sam)
    opened = pages_opened(page)
    page.get_by_role("link", name=re.compile("^Support")).click()
    page.wait_for_url(f"{base}/account/security/staff-key/?next=%2Fsupport%2F")
    page.get_by_role("heading", name="Staff pages need a security key").wait_for()
    assert serious_violations(page) == []
    page.get_by_label("Name of this security key").fill("Desk key")
    # The first key of a staff member needs the code an operator issued and handed over.
    page.get_by_label("Enrolment code").fill(staff_invite(sam.user))
    page.get_by_role("button", name="Add this key and continue").click()
    page.wait_for_url(f"{base}/support/")
    page.get_by_text("Your security key “Desk key” is added.").wait_for()
    assert opened == ["/account/security/staff-key/?next=%2Fsupport%2F", "/support/"]
    assert SecurityKey.objects.get(user=sam.user).name == "Desk key"


def test_a_new_staff_member_goes_from_the_sign_in_to_the_desk_in_one_page(
    page: Any, base: str, transactional_db: None
) -> None:
    """Issue 24's walk: a staff member without 2FA and without a phone number. Before: "Your
    phone number", the general set-up page (the app first), "Add a security key", the
    recovery codes, Security, "This change needs…" with the key, then the desk (8 pages
    after the sign-in). Now: this page, the recovery codes (2FA goes on with the key), the
    desk; in French too, with axe on the new page."""
    new = make_user("new@support.example", is_staff=True)
    VirtualAuthenticator.add(page, resident_key=False, user_verification=True)
    sign_in(page, base, new.email)
    page.wait_for_url(re.compile(r"/account/"))
    page.context.add_cookies([{"name": "django_language", "value": "fr", "url": base}])
    opened = pages_opened(page)
    page.goto(f"{base}/support/")
    page.wait_for_url(f"{base}/account/security/staff-key/?next=%2Fsupport%2F")
    page.get_by_role(
        "heading", name="Les pages du personnel demandent une clé de sécurité"
    ).wait_for()
    assert "vous recevez ensuite des codes de secours" in page.locator("main").inner_text()
    assert serious_violations(page) == []
    page.context.clear_cookies(name="django_language")
    page.reload()
    page.get_by_role("heading", name="Staff pages need a security key").wait_for()
    assert serious_violations(page) == []
    page.get_by_label("Enrolment code").fill(staff_invite(new))
    page.get_by_role("button", name="Add this key and continue").click()
    page.wait_for_url(f"{base}/account/security/recovery-codes/")
    page.get_by_label("I have saved these recovery codes somewhere safe").check()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base}/support/")
    staff_key = "/account/security/staff-key/?next=%2Fsupport%2F"
    # The page, again in English (the reload), the recovery codes, the desk.
    assert opened == [staff_key, staff_key, "/account/security/recovery-codes/", "/support/"]
    assert "/account/security/setup/phone/" not in opened
    assert "/account/security/setup/" not in opened
    assert SecurityKey.objects.filter(user=new).count() == 1
