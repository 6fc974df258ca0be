"""Pages everyone can use, in headless Chromium: axe-core on every page state of every
journey, at 1280 and 390 px; contrast of borders and the focus ring; tables on a phone;
the recovery codes' Copy and printout; times in the browser's zone.

axe-core is vendored (tests/site/vendor/axe.min.js, see its README): no network at test
time. It is evaluated through the DevTools protocol, which the pages' Content-Security-
Policy does not govern, so the pages are checked exactly as served.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import RequestFactory
from django.utils import formats

from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.core import clock
from keyfob.site import views as error_views
from keyfob.support import flows as support
from keyfob.support.models import CallOutcome
from keyfob.twofactor.models import Authenticator
from tests.conftest import PASSWORD, Enrolled, enrol, make_user
from tests.support.conftest import SITE, STAFF_CONTEXT

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
T0 = 1_900_000_005.0  # the middle of a 30-second step
SERIOUS = ("serious", "critical")


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """A new browser (its own cookies) at a given width."""
    contexts: list[Any] = []

    def make(width: int = 1280, **options: Any) -> Any:
        context = browser.new_context(
            locale="en-GB", viewport={"width": width, "height": 900}, **options
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.wait_for_load_state("load")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE)
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    return [v for v in found if v["impact"] in SERIOUS]


def sideways_scroll(page: Any) -> int:
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def code_step(page: Any, who: Enrolled, *, trust: bool = False) -> None:
    page.wait_for_url(re.compile(r"/login/code/$"))
    page.get_by_label("Authentication code").fill(who.code())
    if trust:
        page.get_by_label("Trust this browser for 30 days").check()
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(re.compile(r"/account/security/$"))


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login/$"))


def error_page_html(kind: str) -> str:
    """The 400, 403 and 500 pages as Keyfob renders them (no URL of the site raises them on
    purpose); the browser gets them at the site's address, so they load its stylesheet."""
    request = RequestFactory().get("/")
    view = {
        "400": error_views.bad_request,
        "403": error_views.permission_denied,
        "500": error_views.server_error,
    }[kind]
    return str(view(request).content.decode())


def serve(status: int, html: str) -> Any:
    def handler(route: Any, request: Any) -> None:
        route.fulfill(status=status, content_type="text/html; charset=utf-8", body=html)

    return handler


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_finds_nothing_serious_on_any_page(
    open_page: Any, live_server: Any, width: int, settings: Any
) -> None:
    base = live_server.url
    # Staff sign in with a code here; the pages of the rule that staff need a security key or
    # passkey are checked in tests/twofactor/test_browser_passkeys.py.
    settings.KEYFOB_STAFF_PHISHING_RESISTANT = False
    make_user("carol@example.com", display_name="Carol", phone="+33123456789")
    dave = enrol(make_user("dave@example.com", phone="+33612345678"))
    erin = enrol(make_user("erin@example.com", phone="+33698765432"))
    sam = enrol(make_user("sam@support.example", is_staff=True))
    tess = enrol(make_user("tess@support.example", is_staff=True))
    # Erin's request: Tess confirmed the call, so it waits for Sam (four eyes).
    req = support.open_request(erin.user, Context(), site=SITE)
    support.record_call(req.pk, tess.user, CallOutcome.CONFIRMED, "", STAFF_CONTEXT)

    found: dict[str, list[dict[str, Any]]] = {}
    overflow: dict[str, int] = {}
    page = open_page(width)

    def check(name: str) -> None:
        found[name] = serious_violations(page)
        overflow[name] = sideways_scroll(page)

    with clock.frozen(T0):
        # A new customer turns 2FA on.
        page.goto(f"{base}/login/")
        check("sign-in")
        page.get_by_role("button", name="Sign in", exact=True).click()
        check("sign-in, nothing typed")
        sign_in(page, base, "carol@example.com")
        page.wait_for_url(re.compile(r"/account/security/$"))
        check("security, 2FA off")
        # The account pages, while the password just typed counts as a fresh confirmation.
        page.goto(f"{base}/account/")
        check("profile")
        page.get_by_label("Phone number").fill("not a number")
        page.get_by_role("button", name="Save").click()
        check("profile, wrong phone")
        page.goto(f"{base}/account/password/")
        check("password")
        page.get_by_role("button", name="Change password").click()
        check("password, nothing typed")
        page.goto(f"{base}/account/email/")
        check("e-mail")
        page.goto(f"{base}/account/security/")
        page.get_by_role("link", name="Enable two-factor authentication").click()
        page.get_by_text("Advanced: the type of codes").click()
        check("setup, advanced open")
        page.get_by_role("button", name="Create my key").click()
        page.wait_for_selector(".qr svg")
        page.get_by_text("Cannot scan? Type the key by hand").click()
        check("setup with the key")
        page.get_by_label("Authentication code").fill("12345")
        page.get_by_role("button", name="Activate").click()
        check("setup, wrong code")
        carol = User.objects.get(email="carol@example.com")
        secret = Authenticator.objects.get(user=carol).secret()
        page.get_by_label("Authentication code").fill(Enrolled(carol, secret).code())
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
        check("recovery codes")
        page.get_by_role("button", name="Continue").click()
        check("recovery codes, box not ticked")
        page.get_by_label("I have saved these recovery codes somewhere safe").check()
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        check("security, 2FA on")
        # Turning 2FA on ended the sign-in's fresh confirmation: a sensitive page asks again.
        page.goto(f"{base}/account/password/")
        page.wait_for_url(re.compile(r"/account/confirm/"))
        check("confirm it is you")
        page.goto(f"{base}/support/")
        check("404: a customer on a staff page")
        sign_out(page)

        # A customer with 2FA: the code step, a trusted browser, a request to support.
        sign_in(page, base, "dave@example.com")
        page.wait_for_url(re.compile(r"/login/code/$"))
        check("code step")
        page.get_by_label("Authentication code").fill(
            "000000" if dave.code() != "000000" else "111111"
        )
        page.get_by_role("button", name="Verify").click()
        check("code step, wrong code")
        page.get_by_text("Lost access to your authenticator?").click()
        page.get_by_role("link", name="Ask support to turn off two-factor authentication").click()
        page.wait_for_url(re.compile(r"/support/request/$"))
        check("support request")
        page.get_by_role("button", name="Ask support to turn off two-factor authentication").click()
        check("support request, sent")
        page.goto(f"{base}/login/code/")
        code_step(page, dave, trust=True)
        check("security, trusted browser")
        sign_out(page)

        # Staff: the desk, a request waiting for a second staff member, a new request.
        sign_in(page, base, "sam@support.example")
        code_step(page, sam)
        page.get_by_role("link", name=re.compile("^Support")).click()
        check("support desk")
        page.get_by_role("link", name=re.compile(f"Request {req.pk} ")).click()
        page.get_by_text("Recent security activity").click()
        page.get_by_text("Previous requests").click()
        check("support request, staff")
        page.goto(f"{base}/support/new/")
        check("new request")
        page.get_by_role("button", name="Open the request").click()
        check("new request, nothing typed")

        # Error pages.
        page.goto(f"{base}/no-such-page/")
        check("404")
        page.goto(f"{base}/account/")
        page.context.clear_cookies()
        page.get_by_role("button", name="Save").click()
        page.get_by_role("heading", name="The form has expired").wait_for()
        check("CSRF failure")
        for kind in ("400", "403", "500"):
            page.route(f"{base}/error-{kind}/", serve(int(kind), error_page_html(kind)))
            page.goto(f"{base}/error-{kind}/")
            page.locator("#error-page").wait_for()
            check(kind)

    assert len(found) == 30
    assert {name: v for name, v in found.items() if v} == {}
    if width == 390:
        assert {name: px for name, px in overflow.items() if px > 0} == {}


def test_borders_and_focus_ring_reach_3_to_1(open_page: Any, live_server: Any) -> None:
    # Before: input and button borders #d9dee7 (1.35:1 on white), focus ring #9cc0f5 (1.86:1).
    page = open_page()
    page.goto(f"{live_server.url}/login/")
    ratios = page.evaluate(
        """() => {
        const rgb = c => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
        const lum = c => { const [r, g, b] = rgb(c).map(v => { v /= 255;
            return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort();
            return (y + 0.05) / (x + 0.05); };
        const style = el => getComputedStyle(el);
        const email = document.querySelector("#id_email");
        const card = style(email.closest(".card")).backgroundColor;
        const change = document.querySelector("footer button");
        const footer = style(change.closest("footer")).backgroundColor;
        const root = style(document.documentElement).backgroundColor;
        email.focus();
        const ring = style(email).outlineColor;
        change.focus();
        const buttonRing = style(change).outlineColor;
        return {
            "input border": ratio(style(email).borderTopColor, card),
            "secondary button border": ratio(style(change).borderTopColor, footer),
            "focus ring on a card": ratio(ring, card),
            "focus ring on the page": ratio(ring, root),
            "focus ring in the footer": ratio(buttonRing, footer),
        };
    }"""
    )
    assert {name: round(r, 2) for name, r in ratios.items() if r < 3} == {}


def test_tables_fit_a_phone_with_the_revoke_button_whole(open_page: Any, live_server: Any) -> None:
    dave = enrol(make_user("dave@example.com"))
    page = open_page(390, is_mobile=True)
    with clock.frozen(T0):
        sign_in(page, live_server.url, "dave@example.com")
        code_step(page, dave, trust=True)
        revoke = page.locator("#browsers-table").get_by_role("button", name="Revoke")
        box = revoke.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        for table in ("#browsers-table", "#activity-table"):
            clipped = page.evaluate(
                "t => { const w = document.querySelector(t).closest('.table-wrap');"
                " return w.scrollWidth - w.clientWidth; }",
                table,
            )
            assert clipped <= 0, f"{table} needs a sideways scroll of {clipped}px"
        assert sideways_scroll(page) <= 0
        # Each cell says what it is, now that the header row is out of sight.
        first = page.locator("#activity-table tbody tr").first
        assert first.locator("td").first.get_attribute("data-label") == "When"
        revoke.click()
        assert "1 browser is no longer trusted." in page.locator(".messages").inner_text()


def test_recovery_codes_copy_and_printout(open_page: Any, live_server: Any) -> None:
    make_user("carol@example.com", display_name="Carol", phone="+33123456789")
    page = open_page(permissions=["clipboard-read", "clipboard-write"])
    base = live_server.url
    with clock.frozen(T0):
        sign_in(page, base, "carol@example.com")
        page.wait_for_url(re.compile(r"/account/security/$"))
        page.goto(f"{base}/account/security/setup/")
        assert page.evaluate("window.scrollY") == 0
        assert page.evaluate("document.activeElement === document.body")  # no autofocus
        page.get_by_role("button", name="Create my key").click()
        page.wait_for_selector(".qr svg")
        assert page.evaluate("window.scrollY") == 0  # steps 1 and 2 in view
        assert page.evaluate("document.activeElement === document.body")
        carol = User.objects.get(email="carol@example.com")
        secret = Authenticator.objects.get(user=carol).secret()
        page.get_by_text("Cannot scan? Type the key by hand").click()
        page.get_by_label("Authentication code").fill("000000")
        page.get_by_role("button", name="Activate").click()
        assert page.locator("#manual-key").get_attribute("open") is not None
        page.locator("#secret").wait_for()  # the key, still there to check
        page.get_by_label("Authentication code").fill(Enrolled(carol, secret).code())
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile(r"/recovery-codes/$"))
        codes = page.locator("#recovery-codes li").all_inner_texts()
        assert len(codes) == 10

        page.get_by_role("button", name="Copy").click()
        page.get_by_text("The codes are copied.").wait_for()  # copy.js answers after the copy
        assert page.evaluate("navigator.clipboard.readText()") == "\n".join(codes) + "\n"

        # On paper: the site, the account and the date, then the codes, and nothing else.
        page.emulate_media(media="print")
        printed = [line for line in page.inner_text("body").splitlines() if line.strip()]
        today = formats.date_format(datetime.fromtimestamp(T0, UTC), "DATE_FORMAT")
        assert printed[0] == (
            f"Keyfob recovery codes for carol@example.com, made on {today}. Each code works once."
        )
        assert printed[1:] == codes
        page.emulate_media(media="screen")
        assert not page.locator("#print-heading").is_visible()


def test_times_in_the_browsers_zone_when_the_profile_has_none(
    open_page: Any, live_server: Any
) -> None:
    dave = enrol(make_user("dave@example.com"))
    page = open_page(timezone_id="Asia/Tokyo")
    with clock.frozen(T0):
        sign_in(page, live_server.url, "dave@example.com")
        code_step(page, dave)
    note = page.locator("#activity .js-zone-note").inner_text()
    assert note == "The last 50 events, times in your browser’s time zone: Asia/Tokyo."
    signed_in = page.locator("#activity-table tbody tr").first
    tokyo = datetime.fromtimestamp(T0, ZoneInfo("Asia/Tokyo"))
    assert f"{tokyo:%H:%M}" in signed_in.locator("time").inner_text()
    assert "just now" in signed_in.inner_text() or "ago" in signed_in.inner_text()
