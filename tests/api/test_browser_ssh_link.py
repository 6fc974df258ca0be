"""Issue 22 in headless Chromium: a server's manage token asks to link a login (over HTTP,
as a provisioning script does); the customer reviews the request on the Security page and
links it; from then on that server's token verifies the login. axe-core on the new page."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from keyfob.api import flows
from keyfob.api.models import SshLinkRequest, SshLogin
from keyfob.core import clock
from tests.conftest import enrol, make_user
from tests.site.test_browser_a11y import code_step, serious_violations, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
T0 = 1_900_000_005.0  # middle of a 30-second step


def call(base: str, token: str, path: str, body: dict[str, str]) -> tuple[int, Any]:
    # The live server's own URL (http://127.0.0.1:port), nothing a test reads from outside.
    request = urllib.request.Request(  # noqa: S310
        f"{base}/api/v1/{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def test_a_requested_link_is_reviewed_and_linked_by_the_customer(
    page: Any, live_server: Any
) -> None:
    base = live_server.url
    _row, token = flows.create_token("web1", manage_links=True)
    with clock.frozen(T0 - 300):
        carol = enrol(make_user("carol@example.com", display_name="Carol"))
    with clock.frozen(T0):
        status, body = call(
            base, token, "ssh/logins", {"email": carol.user.email, "login": "carol"}
        )
        assert (status, body["status"]) == (202, "pending")
        # Not in force yet: the server's wrong code counts for nothing.
        assert call(base, token, "ssh/verify", {"login": "carol", "code": "000000"})[1] == {
            "result": "unknown_login"
        }

        sign_in(page, base, "carol@example.com")
        code_step(page, carol)
        waiting = page.locator("#ssh-requests")
        assert "carol on web1" in waiting.inner_text()
        waiting.get_by_role("link", name="Review").click()
        page.wait_for_url(re.compile(r"/account/security/ssh/requests/\d+/$"))
        assert serious_violations(page) == []
        assert page.get_by_role("heading", name="Link an SSH login to your account?").is_visible()
        page.get_by_role("button", name="Link it").click()
        page.wait_for_url(re.compile(r"/account/security/$"))
        assert (
            "The login carol on web1 is linked to your account."
            in page.locator(".messages").inner_text()
        )
        assert page.locator("#ssh-requests").count() == 0
        assert "web1" in page.locator("#ssh table").inner_text()

    assert not SshLinkRequest.objects.exists()
    assert SshLogin.objects.get().user == carol.user
    with clock.frozen(T0 + 30):
        verified = call(base, token, "ssh/verify", {"login": "carol", "code": carol.code()})
        assert verified[1] == {"result": "accepted"}
