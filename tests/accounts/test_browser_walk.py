"""What a walk through every journey found (issue 24), each in headless Chromium: a change
asked again after "Confirm it is you" is applied, not lost; the error summary says why."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from keyfob.accounts.models import User
from keyfob.audit.models import EventKind, SecurityEvent
from keyfob.core import clock
from tests.clients import oathtool_totp
from tests.smtp import SmtpServer
from tests.support.conftest import PASSWORD, T0, Enrolled, enrolled
from tests.support.test_browser_desk import body, deliver, messages, settle, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Long after the sign-in's confirmation (KEYFOB_REAUTH_SECONDS is 600 by default).
LATER = T0 + 900


@pytest.fixture
def alice(transactional_db: None) -> Enrolled:
    return enrolled("alice@example.com")


def signed_in(page: Any, base: str, who: Enrolled, at: float = T0) -> None:
    sign_in(page, base, who.user.email)
    page.wait_for_url(re.compile(r"/login/code/$"))
    page.get_by_label("Authentication code").fill(oathtool_totp(who.b32, at))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/account/security/$"))


def confirm(page: Any, who: Enrolled, at: float) -> None:
    page.wait_for_url(re.compile(r"/account/confirm/"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Authentication code").fill(oathtool_totp(who.b32, at))
    page.get_by_role("button", name="Confirm").click()


def test_a_phone_number_typed_before_the_confirmation_is_saved_after_it(
    page: Any, live_server: Any, smtp: SmtpServer, alice: Enrolled
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        signed_in(page, base, alice)
    with clock.frozen(LATER):
        page.goto(f"{base}/account/")
        page.get_by_label("Phone number").fill("+33612345678")
        page.get_by_label("Name").fill("Alice Martin")
        page.get_by_role("button", name="Save").click()
        assert "Confirm it is you to change the phone number" in messages(page)
        confirm(page, alice, LATER)
        page.wait_for_url(re.compile(r"/account/$"))
        assert "Your profile is saved." in messages(page)
        assert page.get_by_label("Phone number").input_value() == "+33612345678"
        assert page.get_by_label("Name").input_value() == "Alice Martin"
        [notice] = deliver(smtp, 1)
        assert notice["Subject"] == "Keyfob: Phone number or account kind changed"
        assert "+33 6 •• •• •• 78" in body(notice)
    user = User.objects.get(pk=alice.user.pk)
    assert (user.phone, user.display_name) == ("+33612345678", "Alice Martin")
    assert SecurityEvent.objects.filter(user=user, kind=EventKind.PROFILE_CHANGED).count() == 1


def test_a_button_pressed_before_the_confirmation_is_applied_after_it(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    """A guarded form of the Security pages (renaming an app): the same."""
    base = live_server.url
    app = alice.user.authenticators.get()
    with clock.frozen(T0):
        signed_in(page, base, alice)
        page.goto(f"{base}/account/security/apps/{app.pk}/rename/")
    with clock.frozen(LATER):
        page.get_by_label("Name").fill("Work phone")
        page.get_by_role("button", name="Rename").click()
        confirm(page, alice, LATER)
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert "The authenticator app is renamed." in messages(page)
    app.refresh_from_db()
    assert app.name == "Work phone"


def test_a_new_password_is_never_kept_while_confirming(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    """A password typed before the confirmation is not written into the session: the page
    says to type it again, and comes back empty."""
    base = live_server.url
    with clock.frozen(T0):
        signed_in(page, base, alice)
        page.goto(f"{base}/account/password/")
    with clock.frozen(LATER):
        page.get_by_label("New password", exact=True).fill("a fresh and long passphrase 42")
        page.get_by_label("New password again").fill("a fresh and long passphrase 42")
        page.get_by_role("button", name="Change password").click()
        assert "what you typed is not kept" in messages(page)
        confirm(page, alice, LATER)
        page.wait_for_url(re.compile(r"/account/password/$"))
        assert page.get_by_label("New password", exact=True).input_value() == ""
    assert User.objects.get(pk=alice.user.pk).check_password(PASSWORD)


def described_by(page: Any, label: str) -> str:
    """What a screen reader reads after the field's name: its aria-describedby elements."""
    return str(
        page.get_by_label(label, exact=True).evaluate(
            """field => (field.getAttribute("aria-describedby") || "").split(" ")
                .filter(Boolean).map(id => document.getElementById(id).textContent).join(" ")"""
        )
    )


def labels(page: Any) -> list[str]:
    return [str(t).strip() for t in page.locator("main .card form label").all_inner_texts()]


def test_the_password_rules_are_read_with_the_field_and_both_pages_say_the_same(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    base = live_server.url
    with clock.frozen(T0):
        page.goto(f"{base}/login/reset/")
        page.get_by_label("Email").fill("alice@example.com")
        page.get_by_role("button", name=re.compile("code", re.I)).click()
        page.wait_for_url(re.compile(r"/login/reset/code/$"))
        reset_rules = page.locator("#id_new_password1_helptext").inner_text()
        reset_labels = labels(page)
        signed_in(page, base, alice)
        page.goto(f"{base}/account/password/")
        rules = described_by(page, "New password")
        assert "at least" in rules and rules.strip() == reset_rules.strip()
        # Every rule sits inside the element the field points to: nothing after it.
        assert page.locator(".field ul, .field ol").count() == 0
        assert labels(page) == reset_labels[1:] == ["New password", "New password again"]


def test_the_profile_takes_a_phone_number_with_spaces_as_the_set_up_does(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    base = live_server.url
    with clock.frozen(T0):
        signed_in(page, base, alice)
        page.goto(f"{base}/account/")
        page.get_by_label("Phone number").fill("+33 6 12 34 56 78")
        page.get_by_role("button", name="Save").click()
        assert "Your profile is saved." in messages(page)
        assert page.get_by_label("Phone number").input_value() == "+33612345678"
        # Junk is still refused, with the reason.
        page.get_by_label("Phone number").fill("call me maybe")
        page.get_by_role("button", name="Save").click()
        assert "international form" in page.locator(".error-summary").inner_text()
    assert User.objects.get(pk=alice.user.pk).phone == "+33612345678"


def test_a_wrong_code_at_the_confirmation_says_why_and_that_the_password_is_gone(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    base = live_server.url
    with clock.frozen(T0):
        signed_in(page, base, alice)
    with clock.frozen(LATER):
        page.goto(f"{base}/account/security/disable/")
        page.wait_for_url(re.compile(r"/account/confirm/"))
        page.get_by_label("Password").fill(PASSWORD)
        right = oathtool_totp(alice.b32, LATER)
        page.get_by_label("Authentication code").fill("000000" if right != "000000" else "111111")
        page.get_by_role("button", name="Confirm").click()
        summary = page.locator(".error-summary")
        summary.wait_for()
        items = [str(t) for t in summary.locator("li").all_inner_texts()]
        assert items == [
            "Password: type it again (a password is not kept after a mistake).",
            "Authentication code: This code is not right. Check the code for this account in "
            "your app.",
        ]
        assert page.get_by_label("Password").input_value() == ""
        # The summary's links lead to each field.
        summary.get_by_role("link", name=re.compile("^Password")).click()
        assert page.evaluate("document.activeElement.id") == "id_password"


def test_a_code_refused_after_a_fast_phone_s_code_says_how_long_to_wait(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    """A phone 2½ minutes fast: its code spends every step up to its own (else a guesser
    would learn a code to type later). The right code, typed next, says so and how long."""
    base = live_server.url
    with clock.frozen(T0):  # 15 s into its 30-second step
        sign_in(page, base, "alice@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.get_by_label("Authentication code").fill(oathtool_totp(alice.b32, T0 + 150))
        page.get_by_role("button", name="Verify").click()
        assert "minutes fast" in page.locator(".error-summary").inner_text()
        page.get_by_label("Authentication code").fill(oathtool_totp(alice.b32, T0))
        page.get_by_role("button", name="Verify").click()
        text = page.locator(".error-summary").inner_text()
        assert "a code from later was already used" in text
        # Its step and the five after it are spent: 6 * 30 - 15 seconds.
        assert "Wait 165 seconds for a new code, or use a recovery code." in text
    with clock.frozen(T0 + 165):
        page.get_by_label("Authentication code").fill(oathtool_totp(alice.b32, T0 + 165))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/account/security/$"))


AXE = (Path(__file__).parents[1] / "site" / "vendor" / "axe.min.js").read_text()


def axe_findings(page: Any, *also: str) -> list[str]:
    """axe-core's serious and critical findings, with ``also`` (rules axe leaves off by
    default, such as label-content-name-mismatch) run too, whatever their impact."""
    page.wait_for_load_state("load")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE)
    found: list[dict[str, Any]] = page.evaluate(
        """async (also) => (await axe.run(document, {resultTypes: ["violations"],
                rules: Object.fromEntries(also.map(id => [id, {enabled: true}]))})).violations
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.map(n => n.target.join(" "))}))""",
        list(also),
    )
    return [
        f"{v['id']} {v['nodes']}"
        for v in found
        if v["impact"] in ("serious", "critical") or v["id"] in also
    ]


def test_french_chosen_on_the_profile_writes_the_next_notice_in_french_and_names_match(
    page: Any, live_server: Any, smtp: SmtpServer, alice: Enrolled
) -> None:
    base = live_server.url
    settle(smtp)
    with clock.frozen(T0):
        sign_in(page, base, "alice@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.get_by_label("Authentication code").fill(oathtool_totp(alice.b32, T0))
        page.get_by_label("Trust this browser for 30 days").check()
        page.get_by_role("button", name="Verify").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        settle(smtp)  # the "browser trusted" notice, in English

        # The page is in English; French is chosen with a new phone number, in one save.
        page.goto(f"{base}/account/")
        page.locator("#id_language").select_option("fr")
        page.get_by_label("Phone number").fill("+33612345678")
        page.get_by_role("button", name="Save").click()
        assert "Votre profil est enregistré." in messages(page)
        [notice] = deliver(smtp, 1)
        assert body(notice).startswith("Bonjour"), body(notice)

        # The trusted browser's button, in French: what it shows is in what it is called.
        page.goto(f"{base}/account/security/")
        button = page.locator("form[action*='/browsers/'] button").first
        assert button.inner_text() in str(button.get_attribute("aria-label"))
        assert axe_findings(page, "label-content-name-mismatch") == []


def test_one_way_to_write_dates_on_the_security_page_whatever_the_browser(
    browser: Any, live_server: Any, alice: Enrolled
) -> None:
    """An en-GB and an en-US browser (no zone in the profile: times are rewritten in the
    browser's zone) read every date on the page one way: day, month's name, year, 24 h;
    no "p.m.." nor 12/06/2026."""
    base = live_server.url
    seen = []
    for locale in ("en-GB", "en-US"):
        context = browser.new_context(locale=locale, timezone_id="Europe/London")
        page = context.new_page()
        with clock.frozen(T0):
            signed_in(page, base, alice, T0 if locale == "en-GB" else T0 + 30)
            texts = [str(t).strip() for t in page.locator("main time").all_inner_texts()]
            since = page.locator("p.status.on").inner_text()
        context.close()
        assert all(re.fullmatch(r"\d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d", t) for t in texts), texts
        # The sign-in: 2030-03-17 17:46:45 UTC is 17:46 in London (no summer time yet).
        assert "17 March 2030, 17:46" in texts, texts
        texts = [t for t in texts if "2030" in t]  # the enrolment, made now, aside
        assert re.search(r"Since \d{1,2} [A-Z][a-z]+ \d{4}\.", since) and ".." not in since
        seen.append(texts)
    assert seen[0][-1] == seen[1][-1] == "17 March 2030, 17:46"  # the first sign-in, alike


def test_the_passkey_button_stands_apart_from_sign_in_on_a_phone(
    browser: Any, live_server: Any
) -> None:
    context = browser.new_context(locale="en-GB", viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{live_server.url}/login/")
    passkey = page.get_by_role("button", name="Sign in with a passkey")
    passkey.wait_for()
    first = page.get_by_role("button", name="Sign in", exact=True).bounding_box()
    second = passkey.bounding_box()
    context.close()
    assert second["y"] - (first["y"] + first["height"]) >= 12, (first, second)
    assert second["width"] == first["width"]  # both across the card, as big a target


def test_i_lost_my_authenticator_goes_through_the_sign_in_to_the_request(
    page: Any, live_server: Any, alice: Enrolled
) -> None:
    base = live_server.url
    with clock.frozen(T0):
        page.goto(f"{base}/login/help/")
        page.get_by_role("link", name="I lost my authenticator").click()
        page.wait_for_url(re.compile(r"/login/\?next="))
        page.get_by_label("Email").fill("alice@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        # Straight to the request (no code asked: that is what was lost), recovery codes
        # offered first.
        page.wait_for_url(re.compile(r"/support/request/$"))
        page.get_by_role("link", name="Use a recovery code").wait_for()
        page.get_by_role("button", name="Ask support to turn off two-factor authentication").click()
        assert "Your request is sent to support." in messages(page)
    # Without 2FA, or signed in already, nothing to ask: the Security page.
    with clock.frozen(T0 + 60):
        signed_in(page, base, alice, T0 + 60)
        page.goto(f"{base}/support/request/")
        page.wait_for_url(re.compile(r"/account/security/$"))


@pytest.mark.parametrize("locale", ["en-GB", "fr-FR"])
def test_axe_finds_nothing_serious_on_the_states_this_walk_changed(
    browser: Any, live_server: Any, alice: Enrolled, locale: str
) -> None:
    """Every page state changed here, in both languages, on a phone's width: axe-core finds
    nothing serious or critical (and no name that differs from what a control shows)."""
    base = live_server.url
    context = browser.new_context(locale=locale, viewport={"width": 390, "height": 844})
    page = context.new_page()
    found: dict[str, list[str]] = {}

    def check(state: str) -> None:
        found[state] = axe_findings(page, "label-content-name-mismatch")

    def submit() -> None:
        page.locator("main form button[type=submit].primary").first.click()

    with clock.frozen(T0):
        page.goto(f"{base}/login/")
        page.locator("[data-webauthn-start]").wait_for()
        check("sign-in")
        page.goto(f"{base}/login/help/")
        check("can't sign in")
        page.goto(f"{base}/login/")
        page.locator("#id_email").fill("alice@example.com")
        page.locator("#id_password").fill(PASSWORD)
        submit()
        page.wait_for_url(re.compile(r"/login/code/$"))
        page.locator("#id_code").fill(oathtool_totp(alice.b32, T0))
        submit()
        page.wait_for_url(re.compile(r"/account/security/$"))
    with clock.frozen(LATER):
        page.goto(f"{base}/account/password/")
        page.wait_for_url(re.compile(r"/account/confirm/"))
        page.locator("#id_password").fill(PASSWORD)
        right = oathtool_totp(alice.b32, LATER)
        page.locator("#id_code").fill("000000" if right != "000000" else "111111")
        submit()
        page.locator(".error-summary").wait_for()
        check("confirm it is you, wrong code")
        page.locator("#id_password").fill(PASSWORD)
        page.locator("#id_code").fill(right)
        submit()
        page.wait_for_url(re.compile(r"/account/password/$"))
        check("change password")
        page.locator("#id_new_password1").fill("a fresh and long passphrase 42")
        page.locator("#id_new_password2").fill("another passphrase")
        submit()
        page.locator(".error-summary").wait_for()
        check("change password, refused")
        page.goto(f"{base}/account/")
        page.locator("#id_phone").fill("call me maybe")
        submit()
        page.locator(".error-summary").wait_for()
        check("profile, refused")
        page.goto(f"{base}/account/security/")
        check("security")
    context.close()
    assert {state: v for state, v in found.items() if v} == {}
