"""Issue 21 in headless Chromium: one account signed in on two browsers (two contexts, each
its own cookies); the first lists both under "Your sessions" and signs the other out, whose
next page is the sign-in page. axe-core on the new section, at a desktop and a phone width.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from keyfob.accounts.models import SignIn
from keyfob.core import clock
from tests.conftest import enrol, make_user
from tests.site.test_browser_a11y import code_step, serious_violations, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
T0 = 1_900_000_005.0  # the middle of a 30-second step


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    """A new browser of its own (cookies and all) at a given width."""
    contexts: list[Any] = []

    def make(width: int = 1280) -> Any:
        context = browser.new_context(locale="en-GB", viewport={"width": width, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def test_sign_out_another_browser_from_your_sessions(open_page: Any, live_server: Any) -> None:
    base = live_server.url
    with clock.frozen(T0 - 300):
        dana = enrol(make_user("dana@example.com", display_name="Dana"))
    here = open_page()
    there = open_page(width=390)
    with clock.frozen(T0):
        sign_in(here, base, "dana@example.com")
        code_step(here, dana)
    with clock.frozen(T0 + 30):  # the next code
        sign_in(there, base, "dana@example.com")
        code_step(there, dana)
        assert SignIn.objects.filter(user=dana.user, ended_at__isnull=True).count() == 2

        here.reload()
        table = here.locator("#sessions-table")
        rows = table.locator("tbody tr")
        assert rows.count() == 2
        assert "(this browser)" in rows.nth(1).inner_text()  # the older, less recently seen
        assert "Password + Authenticator app code" in rows.nth(0).inner_text()
        assert serious_violations(here) == []
        there.goto(f"{base}/account/security/")
        assert serious_violations(there) == []  # the phone width: the table stacks

        # The one button in the table is the other session's.
        table.get_by_role("button").click()
        here.wait_for_url(re.compile(r"/account/security/$"))
        assert "is signed out." in here.locator(".messages").inner_text()
        assert here.locator("#sessions-table tbody tr").count() == 1
        assert serious_violations(here) == []

        there.goto(f"{base}/account/security/")
        there.wait_for_url(re.compile(r"/login/\?next="))
        assert SignIn.objects.filter(user=dana.user, ended_at__isnull=True).count() == 1
