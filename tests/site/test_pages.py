"""Pages everyone can use (issue 16): the shared form template, the error pages, the setup
and recovery-code pages, the activity list and the support desk's hand-off, as HTML.

The same pages in Chromium, with axe-core, are in tests/site/test_browser_a11y.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path
from django.utils import formats

from keyfob.audit.events import Context
from keyfob.core import clock
from keyfob.support import flows as support
from keyfob.support.models import CallOutcome
from tests.conftest import PASSWORD, Enrolled, make_user, password_step, setup_page
from tests.support.conftest import SITE, STAFF_CONTEXT, client_for, enrolled


class Elements(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def ids(self) -> set[str]:
        return {str(a["id"]) for _, a in self.tags if a.get("id")}

    def with_attr(self, name: str) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for t, a in self.tags if name in a]


def title(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html, re.S)
    assert found
    return " ".join(found.group(1).split())


def assert_described_by_exist(html: str) -> None:
    page = Elements(html)
    described = page.with_attr("aria-describedby")
    assert described
    for tag, attrs in described:
        for ref in str(attrs["aria-describedby"]).split():
            assert ref in page.ids(), f"<{tag} aria-describedby={ref!r}> points at nothing"


# The shared form template ---------------------------------------------------------------


def test_a_refused_form_starts_with_a_summary_and_its_fields_are_described(
    client: Client, user: Any
) -> None:
    # Before issue 16, the hint and error paragraphs had no ids: aria-describedby="id_phone_
    # helptext id_phone_error" pointed at nothing, and there was no summary or "Error:".
    client.force_login(user)
    response = client.post(
        "/account/",
        {"display_name": "Alice", "phone": "not a phone", "kind": "individual", "language": ""},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert title(html).startswith("Error: Profile")
    assert_described_by_exist(html)
    summary = html.index('class="error-summary"')
    assert summary < html.index('name="display_name"')  # the form starts with it
    # Each item says the field and why (issue 24: before, the label alone).
    assert (
        '<a href="#id_phone">Phone number: Enter the number in international form, for '
        "example +33123456789.</a>" in html[summary:]
    )
    assert 'aria-invalid="true"' in html


def test_the_profile_says_what_to_fill_in(client: Client, user: Any) -> None:
    client.force_login(user)
    html = client.get("/account/").content.decode()
    assert title(html) == "Profile · Keyfob"  # no error, no prefix
    fields = {a.get("name"): a for t, a in Elements(html).tags if t in ("input", "select")}
    assert fields["display_name"]["autocomplete"] == "name"
    assert fields["phone"]["type"] == "tel" and fields["phone"]["autocomplete"] == "tel"
    assert_described_by_exist(html)  # the phone's and the time zone's hints


def test_radio_groups_are_fieldsets_and_messages_have_no_role_on_list_items(
    db: None,
) -> None:
    alice = enrolled("alice@example.com", phone="+33123456789")
    sam = enrolled("sam@support.example", is_staff=True)
    req = support.open_request(alice.user, Context(), site=SITE)
    staff = client_for(sam.user)
    html = staff.get(f"/support/{req.pk}/").content.decode()
    assert 'for=""' not in html  # the call outcome had <label for="">
    assert re.search(r"<fieldset[^>]*>\s*<legend>Outcome of the call</legend>", html)
    # A refused step: the page says it, with the summary, and no <li role=…>.
    refused = staff.post(f"/support/{req.pk}/call/", {"call-note": "no outcome"})
    html = refused.content.decode()
    assert title(html).startswith("Error:")
    assert 'href="#id_call-outcome_fieldset"' in html and 'id="id_call-outcome_fieldset"' in html
    assert_described_by_exist(html)
    staff.post(f"/support/{req.pk}/call/", {"call-outcome": CallOutcome.NO_ANSWER})
    html = staff.get(f"/support/{req.pk}/").content.decode()
    assert "The call is recorded." in html
    assert not [a for t, a in Elements(html).tags if t == "li" and "role" in a]


# Error pages ------------------------------------------------------------------------------


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


def suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("odd")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


class ErrorURLs:
    from keyfob.site.urls import handler400, handler403, handler404, handler500
    from keyfob.site.urls import urlpatterns as _site

    urlpatterns = [
        *_site,
        path("boom/", boom),
        path("suspicious/", suspicious),
        path("forbidden/", forbidden),
    ]


def assert_own_page(html: str, heading: str) -> None:
    assert "/static/keyfob/keyfob.css" in html  # styled like every page
    assert f"<h1>{heading}</h1>" in html
    assert 'class="button primary" href="/' in html  # a way back
    assert "DEBUG" not in html and "Django" not in html


@override_settings(ROOT_URLCONF=ErrorURLs)
def test_error_pages_are_keyfobs_own(db: None) -> None:
    client = Client(raise_request_exception=False)
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert_own_page(missing.content.decode(), "Page not found")
    assert 'href="/login/"' in missing.content.decode()
    assert client.get("/forbidden/").status_code == 403
    assert_own_page(client.get("/forbidden/").content.decode(), "Not allowed")
    assert client.get("/suspicious/").status_code == 400
    assert_own_page(client.get("/suspicious/").content.decode(), "Bad request")
    broken = client.get("/boom/")
    assert broken.status_code == 500
    assert_own_page(broken.content.decode(), "Something went wrong")
    french = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="fr")
    assert "<h1>Page introuvable</h1>" in french.content.decode()


def test_the_csrf_page_says_what_to_do_and_never_mentions_debug(db: None) -> None:
    make_user("alice@example.com")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"email": "alice@example.com", "password": PASSWORD})
    assert response.status_code == 403
    html = response.content.decode()
    assert_own_page(html, "The form has expired")
    assert "reload the page" in html


def test_a_customer_on_a_staff_url_gets_the_404_page(client: Client, user: Any) -> None:
    client.force_login(user)
    for url in ["/support/", "/support/1/", "/support/new/"]:
        response = client.get(url)
        assert response.status_code == 404
        assert_own_page(response.content.decode(), "Page not found")
    assert ">Support<" not in client.get("/account/").content.decode()  # no menu link


# The four-eyes hand-off ---------------------------------------------------------------


def test_the_second_staff_member_sees_what_waits_and_the_first_is_told(db: None) -> None:
    alice = enrolled("alice@example.com", phone="+33123456789")
    sam = enrolled("sam@support.example", is_staff=True)
    tess = enrolled("tess@support.example", is_staff=True)
    req = support.open_request(alice.user, Context(), site=SITE)
    sam_client, tess_client = client_for(sam.user), client_for(tess.user)
    assert "waits for you" not in tess_client.get("/support/").content.decode()

    done = sam_client.post(f"/support/{req.pk}/call/", {"call-outcome": CallOutcome.CONFIRMED})
    told = sam_client.get(done["Location"]).content.decode()
    assert "Another staff member must now disable two-factor authentication" in told
    # Sam recorded the call: nothing waits for Sam; Tess sees it in the menu and on the desk.
    assert "waits for you" not in sam_client.get("/account/").content.decode()
    menu = tess_client.get("/account/").content.decode()
    assert re.search(r'<a href="/support/">Support <span class="badge">1 waits for you', menu)
    desk = tess_client.get("/support/").content.decode()
    waiting = desk[desk.index('id="waiting"') :]
    assert f'href="/support/{req.pk}/#disable"' in waiting and "alice@example.com" in waiting
    support.disable(req.pk, tess.user, "checked by Sam", STAFF_CONTEXT)
    assert "waits for you" not in tess_client.get("/account/").content.decode()


# Turning 2FA on, and the recovery codes ---------------------------------------------------


def test_setup_opens_at_its_top_with_counter_based_codes_under_advanced(
    client: Client, user: Any, frozen_time: float
) -> None:
    password_step(client)  # a fresh sign-in: turning 2FA on needs a recent password
    first = client.get("/account/security/setup/").content.decode()
    assert "autofocus" not in first
    advanced = first[first.index('<details class="advanced"') : first.index("</details>")]
    assert "Counter-based" in advanced and 'value="totp"' in advanced and "checked" in advanced
    assert first.index("</details>") < first.index("Create my key")  # the one obvious button

    html = setup_page(client)
    assert "autofocus" not in html  # focus would scroll past steps 1 and 2
    assert "This key waits 10 more minutes for its first code." in html
    assert '<details id="manual-key">' in html  # closed until needed
    with clock.frozen(frozen_time + 301):
        later = client.get("/account/security/setup/").content.decode()
    assert "This key waits 5 more minutes" in later

    wrong = client.post("/account/security/setup/", {"code": "12345"})
    html = wrong.content.decode()
    assert "The code has 6 digits; you typed 5." in html
    assert '<details id="manual-key" open>' in html  # the key stays there to check
    assert title(html).startswith("Error:")


def test_recovery_codes_page_offers_copy_and_a_printout_heading(
    client: Client, user: Any, frozen_time: float
) -> None:
    from keyfob import otp
    from keyfob.twofactor.models import Authenticator

    password_step(client)  # a fresh sign-in: turning 2FA on needs a recent password
    setup_page(client)
    secret = Authenticator.objects.get(user=user).secret()
    response = client.post("/account/security/setup/", {"code": otp.totp(secret, frozen_time)})
    html = client.get(response["Location"]).content.decode()
    assert '<button type="button" class="js-copy" data-copy="#recovery-codes" hidden>' in html
    assert '<script src="/static/keyfob/copy.js">' in html
    heading = re.search(r'<p class="print-heading" id="print-heading">(.*?)</p>', html, re.S)
    assert heading
    today = formats.date_format(clock.now(), "DATE_FORMAT")
    assert " ".join(heading.group(1).split()) == (
        f"Keyfob recovery codes for alice@example.com, made on {today}. Each code works once."
    )
    refused = client.post("/account/security/recovery-codes/", {}).content.decode()
    assert "Tick the box once you have saved the codes." in refused
    assert title(refused).startswith("Error:")


# The activity list ----------------------------------------------------------------------


def test_activity_marks_failures_this_browser_and_how_long_ago(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    user = user_with_totp.user
    here = {"HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
    client.post("/login/", {"email": user.email, "password": "wrong"}, **here)
    password_step(client)
    with clock.frozen(frozen_time + 30):
        client.post("/login/code/", {"code": user_with_totp.code()}, **here)
    with clock.frozen(frozen_time + 600):
        html = client.get("/account/security/", **here).content.decode()
    table = html[html.index('id="activity-table"') :]
    rows = re.findall(r"<tr[^>]*>.*?</tr>", table, re.S)
    text = [" ".join(re.sub(r"<[^>]+>", " ", r).split()) for r in rows]
    failed = next(t for t in text if "Wrong password" in t)
    assert "Failed: Wrong password" in failed and "10 minutes ago" in failed
    assert "this browser" in failed  # the same browser, from the same address
    signed_in = next(t for t in text if t.startswith("9 minutes ago") and "Signed in" in t)
    assert "(this browser)" in signed_in and "Failed" not in signed_in
    enrolment = next(t for t in text if "turned on" in t)
    assert "this browser" not in enrolment  # another browser ("tests", 192.0.2.1)


def test_without_a_time_zone_times_are_the_browsers(client: Client, user: Any) -> None:
    client.force_login(user)
    assert user.time_zone == ""  # none chosen: the default for a new account
    html = client.get("/account/security/").content.decode()
    assert '<script src="/static/keyfob/localtime.js">' in html
    assert "js-zone-note" in html
    user.time_zone = "Europe/Paris"
    user.save()
    html = client.get("/account/security/").content.decode()
    assert "localtime.js" not in html and "times in Europe/Paris" in html


@pytest.mark.parametrize("choice", ["", "Europe/Paris"])
def test_the_profile_accepts_the_browsers_time_zone(client: Client, user: Any, choice: str) -> None:
    client.force_login(user)
    data = {
        "display_name": "Alice",
        "phone": "+33123456789",
        "kind": "individual",
        "language": "",
        "time_zone": choice,
    }
    assert client.post("/account/", data).status_code == 302
    user.refresh_from_db()
    assert user.time_zone == choice
