"""Account → Team in real headless Chromium with a real SMTP server: the owner invites, the
invitee reads the code in the real mail, signs in and accepts; the owner sees the member;
the member sees that a "security key" grant waits in a session signed in with a code."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keyfob.api.models import SshLogin
from keyfob.core import clock
from keyfob.teams.models import Grant
from tests.conftest import enrol, make_user
from tests.site.test_browser_a11y import code_step, serious_violations, sign_in
from tests.smtp import SmtpServer
from tests.support.test_browser_desk import body, deliver, settle

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
T0 = 1_900_000_005.0  # the middle of a 30-second step


def test_invite_by_real_mail_accept_and_see_what_waits(
    browser: Any, live_server: Any, smtp: SmtpServer
) -> None:
    base = live_server.url
    with clock.frozen(T0):
        olivia = enrol(make_user("olivia@example.com", display_name="Olivia"))
        SshLogin.objects.create(login="deploy", server="web1", user=olivia.user)
        max_ = enrol(make_user("max@example.com", display_name="Max"))
        settle(smtp)
        screen = {"width": 1200, "height": 900}
        owner_context = browser.new_context(locale="en-GB", viewport=screen)
        member_context = browser.new_context(locale="en-GB", viewport=screen)
        try:
            owner = owner_context.new_page()
            owner.set_default_timeout(10_000)
            sign_in(owner, base, "olivia@example.com")
            code_step(owner, olivia)
            owner.get_by_role("link", name="Team").click()
            owner.wait_for_url(re.compile(r"/account/team/$"))
            assert serious_violations(owner) == []
            owner.get_by_role("link", name="Invite someone").click()
            owner.get_by_label("E-mail address").fill("max@example.com")
            owner.get_by_label("technical").check()
            owner.get_by_label("deploy @ web1").check()
            owner.get_by_label("Security key or passkey required").check()
            assert serious_violations(owner) == []
            owner.get_by_role("button", name="Send the invitation").click()
            owner.wait_for_url(re.compile(r"/account/team/$"))
            assert "The invitation is sent to max@example.com" in owner.content()

            mails = deliver(smtp, 2)
            [invitation] = [m for m in mails if m["To"] == "max@example.com"]
            text = body(invitation)
            assert "Olivia <olivia@example.com> invites you to act for their account" in text
            found = re.search(r"^\s+(\d{4}) (\d{4})$", text, re.MULTILINE)
            assert found, text
            code = found.group(1) + found.group(2)

            member = member_context.new_page()
            member.set_default_timeout(10_000)
            sign_in(member, base, "max@example.com")
            code_step(member, max_)
            member.goto(f"{base}/account/team/")
            assert "Invitations for you" in member.content()
            assert serious_violations(member) == []
            member.get_by_label("Code from the invitation").fill(code)
            member.get_by_role("button", name="Accept").click()
            member.wait_for_url(re.compile(r"/account/team/$"))
            page_text = member.content()
            assert "You now act for the account of Olivia" in page_text
            assert "The account of Olivia &lt;olivia@example.com&gt;" in page_text
            # Signed in with a code: the grant needs a key, and says so with the way out.
            assert "This grant waits for a security key." in page_text
            assert member.get_by_role("link", name="Add a security key").count() == 1
            assert serious_violations(member) == []
            assert code not in member.url

            owner.reload()
            assert owner.locator("#members-table").get_by_text("max@example.com").count() == 1
            assert Grant.objects.filter(owner=olivia.user, member=max_.user).count() == 1
        finally:
            owner_context.close()
            member_context.close()
