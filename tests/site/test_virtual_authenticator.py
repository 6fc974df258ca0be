"""webauthn.js in headless Chromium with a virtual authenticator (tests.clients
.VirtualAuthenticator), on a test page of its own served by the live server at
http://localhost:PORT (a secure context; RP id "localhost"). The page follows the
template contract of the spec; its options come from the `webauthn` library; what the
script posts is checked with the library's verify_registration_response and
verify_authentication_response. The pages run under the site's Content-Security-Policy.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import path
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers.exceptions import InvalidAuthenticationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from tests.clients import VirtualAuthenticator, b64url_to_cdp
from tests.webauthn_soft import b64url, b64url_decode

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RP_ID = "localhost"
USER_ID = b"\x07" * 16
MESSAGES = {"unavailable": "No keys here.", "cancelled": "You cancelled.", "failed": "It failed."}


# The test page and its two endpoints -----------------------------------------------------


@dataclass
class Ceremony:
    """What the endpoints are to ask for, and what they gave and received."""

    resident_key: ResidentKeyRequirement = ResidentKeyRequirement.DISCOURAGED
    user_verification: UserVerificationRequirement = UserVerificationRequirement.PREFERRED
    allow: list[bytes] = field(default_factory=list)  # get: empty for a passkey sign-in
    challenges: list[bytes] = field(default_factory=list)
    posted: list[dict[str, str]] = field(default_factory=list)


CEREMONY = Ceremony()

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WebAuthn</title></head><body><main>
<form method="post" action="/done/" data-webauthn="{mode}" data-options-url="/options/{kind}/"
      data-msg-unavailable="{unavailable}" data-msg-cancelled="{cancelled}"
      data-msg-failed="{failed}" data-msg-waiting="Touch your key.">
  <input type="hidden" name="csrfmiddlewaretoken" value="{token}">
  <input type="hidden" name="credential">
  <label>Email <input type="email" name="email" autocomplete="username webauthn"></label>
  <button type="submit" data-webauthn-start hidden>Use my key</button>
  <p data-webauthn-unavailable>This browser cannot use security keys.</p>
  <p data-webauthn-status role="alert"></p>
</form>
</main><script src="/static/keyfob/webauthn.js"></script></body></html>
"""


def page_view(request: HttpRequest, mode: str) -> HttpResponse:
    kind = request.GET.get("options", "create" if mode == "create" else "get")
    html = PAGE.format(mode=mode, kind=kind, token=get_token(request), **MESSAGES)
    if "bare" in request.GET:  # a form without the [data-webauthn-unavailable] text
        html = re.sub(r"\s*<p data-webauthn-unavailable>.*?</p>", "", html)
    return HttpResponse(html)


def options_view(request: HttpRequest, kind: str) -> HttpResponse:
    # Only a POST with the CSRF token reaches here (Django's CsrfViewMiddleware).
    if request.method != "POST" or kind == "broken":
        return HttpResponse("no", status=400)
    options: Any
    if kind == "create":
        options = generate_registration_options(
            rp_id=RP_ID,
            rp_name="Keyfob",
            user_name="alice@example.com",
            user_id=USER_ID,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=CEREMONY.resident_key,
                user_verification=CEREMONY.user_verification,
            ),
        )
    else:
        options = generate_authentication_options(
            rp_id=RP_ID,
            allow_credentials=[PublicKeyCredentialDescriptor(id=i) for i in CEREMONY.allow],
            user_verification=CEREMONY.user_verification,
        )
    CEREMONY.challenges.append(options.challenge)
    return HttpResponse(options_to_json(options), content_type="application/json")


def done_view(request: HttpRequest) -> HttpResponse:
    CEREMONY.posted.append(request.POST.dict())
    return HttpResponse('<!doctype html><html lang="en"><title>Done</title><p>Received</p>')


class PageURLs:
    urlpatterns = [
        path("webauthn/<str:mode>/", page_view),
        path("options/<str:kind>/", options_view),
        path("done/", done_view),
    ]


@pytest.fixture
def site(settings: Any, live_server: Any) -> Iterator[str]:
    """The live server's base URL, serving the test page (and static files); a fresh
    Ceremony for each test."""
    global CEREMONY
    CEREMONY = Ceremony()
    settings.ROOT_URLCONF = PageURLs
    # A secure context over plain HTTP, where WebAuthn works: the RP id is "localhost".
    assert re.fullmatch(r"http://localhost:\d+", live_server.url)
    yield live_server.url


@pytest.fixture
def csp_violations(page: Any) -> list[str]:
    """The page's Content-Security-Policy violations, collected from before any script."""
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective))"
    )
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Content Security" in m.text else None)
    return seen


# Helpers -------------------------------------------------------------------------------


def run(page: Any, site: str, mode: str) -> dict[str, Any]:
    """Open the test page in ``mode``, press the button, wait for the posted form; return
    the credential JSON the script wrote."""
    posted = len(CEREMONY.posted)
    page.goto(f"{site}/webauthn/{mode}/")
    page.get_by_role("button", name="Use my key").click()
    page.get_by_text("Received").wait_for()
    assert len(CEREMONY.posted) == posted + 1
    return dict(json.loads(CEREMONY.posted[-1]["credential"]))


def status_after_press(page: Any, site: str, mode: str, **query: str) -> str:
    """Press the button on the test page; the status text once the ceremony has ended."""
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    page.goto(f"{site}/webauthn/{mode}/{suffix}")
    button = page.get_by_role("button", name="Use my key")
    button.click()
    status = page.locator("[data-webauthn-status]")
    page.wait_for_function(
        "s => ![null, '', 'Touch your key.'].includes(document.querySelector(s).textContent)",
        arg="[data-webauthn-status]",
    )
    assert button.is_enabled()  # ready for another try
    return str(status.text_content())


def register(page: Any, site: str) -> tuple[dict[str, Any], VerifiedRegistration]:
    """Register through the test page; the credential JSON posted and what the library
    makes of it."""
    credential = run(page, site, "create")
    verified = verify_registration_response(
        credential=credential,
        expected_challenge=CEREMONY.challenges[-1],
        expected_rp_id=RP_ID,
        expected_origin=site,
    )
    return credential, verified


def verify_assertion(
    assertion: dict[str, Any],
    site: str,
    registered: VerifiedRegistration,
    count: int,
    *,
    require_uv: bool = False,
) -> VerifiedAuthentication:
    """What the library makes of ``assertion`` for the last options given, the key
    ``registered`` with its counter last seen at ``count``."""
    return verify_authentication_response(
        credential=assertion,
        expected_challenge=CEREMONY.challenges[-1],
        expected_rp_id=RP_ID,
        expected_origin=site,
        credential_public_key=registered.credential_public_key,
        credential_current_sign_count=count,
        require_user_verification=require_uv,
    )


def sign_in(
    page: Any, site: str, registered: VerifiedRegistration, count: int
) -> tuple[dict[str, Any], VerifiedAuthentication]:
    """Sign in with ``registered`` (its counter last seen at ``count``) through the test
    page; the assertion JSON posted and what the library makes of it."""
    CEREMONY.allow = [registered.credential_id]
    assertion = run(page, site, "get")
    return assertion, verify_assertion(assertion, site, registered, count)


# Tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("parser", ["browser", "script"])
def test_register_and_sign_in_with_a_security_key(
    page: Any, site: str, csp_violations: list[str], parser: str
) -> None:
    """The script registers a key and signs in with it; both verify with the library, under
    the site's CSP. ``parser`` "script": without PublicKeyCredential.parse*FromJSON the
    script decodes the options itself, to the same result."""
    if parser == "script":
        page.add_init_script(
            "delete PublicKeyCredential.parseCreationOptionsFromJSON;"
            " delete PublicKeyCredential.parseRequestOptionsFromJSON;"
        )
    key = VirtualAuthenticator.add(page, resident_key=False, user_verification=False)
    credential, registered = register(page, site)
    assert set(credential) == {
        "id", "rawId", "type", "response", "clientExtensionResults", "authenticatorAttachment"
    }  # fmt: skip
    assert set(credential["response"]) == {"clientDataJSON", "attestationObject", "transports"}
    assert credential["response"]["transports"] == ["usb"]
    assert credential["authenticatorAttachment"] == "cross-platform"
    assert key.credential_ids() == [credential["id"]] == [b64url(registered.credential_id)]
    assert registered.user_verified is False  # no UV on this key
    # Chrome's virtual authenticator counts the registration: its counter starts at 1.
    assert registered.sign_count == 1 == key.credentials()[0]["signCount"]

    count = registered.sign_count
    for _ in range(2):
        assertion, verified = sign_in(page, site, registered, count)
        assert set(assertion["response"]) == {
            "clientDataJSON", "authenticatorData", "signature", "userHandle"
        }  # fmt: skip
        assert verified.new_sign_count == count + 1  # Chrome counts one per assertion
        count = verified.new_sign_count
    assert key.credentials()[0]["signCount"] == count
    assert assertion["response"]["userHandle"] is None  # not a resident credential
    assert page.evaluate("window.__csp") == [] and csp_violations == []


def test_a_passkey_with_user_verification_and_its_user_handle(page: Any, site: str) -> None:
    """A resident, UV key registers a discoverable credential with UV; a sign-in with no
    allow list (a passkey) finds it and gives back the user handle of the registration."""
    key = VirtualAuthenticator.add(page, resident_key=True, user_verification=True)
    CEREMONY.resident_key = ResidentKeyRequirement.REQUIRED
    CEREMONY.user_verification = UserVerificationRequirement.REQUIRED
    credential, registered = register(page, site)
    assert registered.user_verified is True
    [held] = key.credentials()
    assert held["isResidentCredential"] is True
    assert held["userHandle"] == b64url_to_cdp(b64url(USER_ID))
    assert held["rpId"] == RP_ID

    CEREMONY.allow = []
    assertion = run(page, site, "get")
    assert assertion["id"] == credential["id"]
    assert b64url_decode(assertion["response"]["userHandle"]) == USER_ID
    verified = verify_assertion(assertion, site, registered, registered.sign_count, require_uv=True)
    assert verified.user_verified is True


def test_user_verification_that_fails_is_a_cancelled_ceremony(page: Any, site: str) -> None:
    """With UV required and the key's UV failing, the browser refuses (NotAllowedError):
    the status says data-msg-cancelled, and the button is ready again; UV back, it works."""
    key = VirtualAuthenticator.add(page, resident_key=True, user_verification=True)
    CEREMONY.user_verification = UserVerificationRequirement.REQUIRED
    key.set_user_verified(False)
    assert status_after_press(page, site, "create") == MESSAGES["cancelled"]
    assert CEREMONY.posted == [] and key.credentials() == []
    key.set_user_verified(True)
    _, registered = register(page, site)
    assert registered.user_verified is True


def test_a_cloned_key_goes_backwards_and_is_refused(page: Any, site: str) -> None:
    """A credential put back with a lower signCount (remove_credential, add_credential)
    signs with that lower counter, which the library refuses as a possible clone."""
    key = VirtualAuthenticator.add(page, resident_key=False, user_verification=False)
    _, registered = register(page, site)
    count = 0
    for _ in range(3):
        count = sign_in(page, site, registered, count)[1].new_sign_count
    [held] = key.credentials()
    key.remove_credential(b64url(registered.credential_id))
    assert key.credentials() == []
    key.add_credential({**held, "signCount": 1})
    CEREMONY.allow = [registered.credential_id]
    clone = run(page, site, "get")
    with pytest.raises(InvalidAuthenticationResponse, match="sign count of 2 was not greater"):
        verify_assertion(clone, site, registered, count)


def test_a_bogus_signature_is_refused(page: Any, site: str) -> None:
    """set_response_override(bogus_signature=True) makes an assertion whose signature the
    library refuses; the override off, the next one verifies."""
    key = VirtualAuthenticator.add(page, resident_key=False, user_verification=False)
    _, registered = register(page, site)
    key.set_response_override(bogus_signature=True)
    with pytest.raises(InvalidAuthenticationResponse):
        sign_in(page, site, registered, 0)
    key.set_response_override()
    # The refused assertion still moved the counter (1 at registration, 2 then).
    assert sign_in(page, site, registered, 2)[1].new_sign_count == 3


def test_failures_and_refusals_say_so(page: Any, site: str) -> None:
    """Options the server refuses to give end in data-msg-failed; a removed authenticator
    (its credential gone with it, another key plugged in) in data-msg-cancelled, as a key
    that does not hold the credential asked for; nothing is posted."""
    key = VirtualAuthenticator.add(page, resident_key=False, user_verification=False)
    assert status_after_press(page, site, "create", options="broken") == MESSAGES["failed"]
    assert CEREMONY.challenges == []
    _, registered = register(page, site)
    key.remove()
    other = VirtualAuthenticator.add(page, resident_key=False, user_verification=False)
    CEREMONY.allow = [registered.credential_id]
    assert status_after_press(page, site, "get") == MESSAGES["cancelled"]
    assert len(CEREMONY.posted) == 1 and other.credentials() == []


def test_a_double_press_runs_one_ceremony(page: Any, site: str) -> None:
    """Two presses in a row start one ceremony: one options request, one credential posted."""
    key = VirtualAuthenticator.add(page, resident_key=False, user_verification=False)
    page.goto(f"{site}/webauthn/create/")
    page.evaluate("b => { b.click(); b.click(); }", page.get_by_role("button").element_handle())
    page.get_by_text("Received").wait_for()
    assert len(CEREMONY.challenges) == 1 and len(CEREMONY.posted) == 1
    assert len(key.credentials()) == 1


def test_enter_in_a_field_starts_the_ceremony(page: Any, site: str) -> None:
    """Enter in the form's field submits it through the script, with a credential."""
    VirtualAuthenticator.add(page, resident_key=False, user_verification=False)
    page.goto(f"{site}/webauthn/create/")
    page.get_by_label("Email").fill("alice@example.com")
    page.get_by_label("Email").press("Enter")
    page.get_by_text("Received").wait_for()
    assert json.loads(CEREMONY.posted[0]["credential"])["type"] == "public-key"
    assert CEREMONY.posted[0]["email"] == "alice@example.com"


def test_without_webauthn_the_button_is_hidden(page: Any, site: str) -> None:
    """In a browser without PublicKeyCredential the button stays hidden and the
    unavailable text shows (or, without one, data-msg-unavailable as the status); with
    it, the reverse."""
    page.goto(f"{site}/webauthn/create/")
    assert page.get_by_role("button", name="Use my key").is_visible()
    assert not page.get_by_text("This browser cannot use security keys.").is_visible()
    page.add_init_script("delete window.PublicKeyCredential")
    page.reload()
    assert page.get_by_text("This browser cannot use security keys.").is_visible()
    assert not page.get_by_role("button", name="Use my key").is_visible()
    # Without that text on the form, the status says data-msg-unavailable.
    page.goto(f"{site}/webauthn/create/?bare")
    assert page.locator("[data-webauthn-status]").text_content() == MESSAGES["unavailable"]
    assert not page.get_by_role("button", name="Use my key").is_visible()


def test_conditional_mediation_signs_in_without_a_press(page: Any, site: str) -> None:
    """On a "conditional" form the script asks for a passkey as the page loads; Chrome's
    virtual authenticator answers with its resident credential, and the form is posted
    without a press; the assertion verifies. (Chrome offers conditional mediation only with
    a platform authenticator: transport "internal".)"""
    VirtualAuthenticator.add(page, resident_key=True, user_verification=True, transport="internal")
    CEREMONY.resident_key = ResidentKeyRequirement.REQUIRED
    _, registered = register(page, site)
    assert page.evaluate("PublicKeyCredential.isConditionalMediationAvailable()") is True
    page.goto(f"{site}/webauthn/conditional/")
    page.get_by_text("Received").wait_for()
    assertion = json.loads(CEREMONY.posted[-1]["credential"])
    verified = verify_assertion(assertion, site, registered, registered.sign_count)
    assert verified.credential_id == registered.credential_id


@pytest.mark.parametrize(
    ("resident_key", "user_verification", "resident", "uv_at_registration", "uv_at_sign_in"),
    [
        ("preferred", "preferred", True, True, True),
        ("discouraged", "preferred", False, True, True),
        ("discouraged", "discouraged", False, True, False),
    ],
)
def test_what_chromes_key_does_with_preferences(
    page: Any,
    site: str,
    resident_key: str,
    user_verification: str,
    resident: bool,
    uv_at_registration: bool,
    uv_at_sign_in: bool,
) -> None:
    """What the page tests rely on, for a key that can keep passkeys and verify its user:
    residentKey "preferred" makes a resident credential, "discouraged" does not (and then no
    user handle comes back); it verifies the user at registration even when UV is
    "discouraged", and at sign-in only when UV is not "discouraged"."""
    key = VirtualAuthenticator.add(page, resident_key=True, user_verification=True)
    CEREMONY.resident_key = ResidentKeyRequirement(resident_key)
    CEREMONY.user_verification = UserVerificationRequirement(user_verification)
    _, registered = register(page, site)
    assert key.credentials()[0]["isResidentCredential"] is resident
    assert registered.user_verified is uv_at_registration
    assertion, verified = sign_in(page, site, registered, registered.sign_count)
    assert (assertion["response"]["userHandle"] is not None) is resident
    assert verified.user_verified is uv_at_sign_in


def test_a_synced_passkey_has_the_backup_flags(page: Any, site: str) -> None:
    """backup_eligible and backed_up set the BE and BS flags of what the key makes, as a
    synced passkey's; a platform key says "platform" and "internal"."""
    key = VirtualAuthenticator.add(
        page,
        resident_key=True,
        user_verification=True,
        transport="internal",
        backup_eligible=True,
        backed_up=True,
    )
    CEREMONY.resident_key = ResidentKeyRequirement.REQUIRED
    credential, registered = register(page, site)
    assert registered.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert registered.credential_backed_up is True
    assert credential["authenticatorAttachment"] == "platform"
    assert credential["response"]["transports"] == ["internal"]
    assert key.credentials()[0]["backupEligibility"] is True


def test_resident_key_required_without_user_verification_is_refused(page: Any, site: str) -> None:
    """Chrome will not make a resident credential on a key without user verification: the
    ceremony ends as cancelled (NotAllowedError)."""
    key = VirtualAuthenticator.add(page, resident_key=True, user_verification=False)
    CEREMONY.resident_key = ResidentKeyRequirement.REQUIRED
    assert status_after_press(page, site, "create") == MESSAGES["cancelled"]
    assert key.credentials() == []


def test_a_press_on_a_conditional_form_takes_over_from_the_autofill(page: Any, site: str) -> None:
    """On a "conditional" form whose autofill request is still waiting (no passkey to offer:
    the key's credential is not resident), the button asks in a dialog instead, and its
    assertion verifies. (The script aborts the waiting request first; Chrome would also
    cancel it by itself, so this does not prove the abort, only that the press works.)"""
    VirtualAuthenticator.add(page, resident_key=True, user_verification=True, transport="internal")
    _, registered = register(page, site)  # residentKey "discouraged": not a passkey
    page.goto(f"{site}/webauthn/conditional/")
    deadline = time.monotonic() + 10
    while len(CEREMONY.challenges) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(CEREMONY.challenges) == 2  # the autofill's options: it waits for a passkey
    assert len(CEREMONY.posted) == 1  # the registration only
    CEREMONY.allow = [registered.credential_id]
    page.get_by_role("button", name="Use my key").click()
    page.get_by_text("Received").wait_for()
    assertion = json.loads(CEREMONY.posted[-1]["credential"])
    verified = verify_assertion(assertion, site, registered, registered.sign_count)
    assert verified.credential_id == registered.credential_id
    assert len(CEREMONY.challenges) == 3
