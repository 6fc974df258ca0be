"""The mails a walk through every journey read (issue 24), delivered through a real SMTP
server (aiosmtpd): no line a mailbox would mangle into ">From", the "2FA on" notice naming
the factor that turned it on, the copied-key warning never saying "nothing more to do", and
"News of your request" never pointing at steps it does not list."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from django.db import transaction

from keyfob.accounts.models import User
from keyfob.audit import mailer, notices
from keyfob.audit.notices import NoticeKind
from tests.audit.conftest import CONTEXT
from tests.conftest import enrol
from tests.smtp import SmtpServer
from tests.twofactor.keys import enrol_key


def delivered(smtp: SmtpServer) -> list[tuple[str, str]]:
    """(plain text, HTML) of every message sent now, as the SMTP server received them."""
    mailer.send_pending()
    found = []
    for message in smtp.inbox.messages:
        assert isinstance(message, EmailMessage)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
        found.append((str(text.get_content()), str(html.get_content())))
    smtp.inbox.clear()
    return found


def queue(user: User, kind: NoticeKind, **params: Any) -> None:
    with transaction.atomic():
        notices.queue(user, kind, CONTEXT, **params)


def test_no_line_of_a_notice_starts_with_from(alice: User, smtp: SmtpServer, frozen: float) -> None:
    """A line starting "From " is escaped to ">From " by mailboxes on the way (mbox): the
    address the change came from is introduced by other words."""
    queue(alice, NoticeKind.PASSWORD_CHANGED)
    [(text, html)] = delivered(smtp)
    assert "Network address: 203.0.113.7" in text and "Network address: 203.0.113.7" in html
    assert [line for line in text.splitlines() if line.lstrip(">").startswith("From ")] == []


def test_two_factor_turned_on_by_a_key_speaks_of_the_key(
    alice: User, smtp: SmtpServer, frozen: float
) -> None:
    enrol_key(alice, "Blue key")
    [(text, html)] = delivered(smtp)
    for body in (text, html):
        assert "your password and then your security key or passkey" in body
        assert "away from your key" in body
        assert "authenticator app" not in body and "phone" not in body


def test_two_factor_turned_on_by_an_app_still_speaks_of_the_app(
    alice: User, smtp: SmtpServer, frozen: float
) -> None:
    enrol(alice)
    [(text, _)] = delivered(smtp)
    assert "a code from your authenticator app" in text and "away from your phone" in text


def test_the_copied_key_warning_never_says_there_is_nothing_to_do(
    alice: User, smtp: SmtpServer, frozen: float
) -> None:
    queue(alice, NoticeKind.KEY_CLONE, name="Blue key")
    [(text, html)] = delivered(smtp)
    for body in (text, html):
        assert "nothing more to do" not in body
        assert "Even if this sign-in was yours, the key may have been copied" in body


@pytest.mark.parametrize(
    ("state", "said"),
    [
        ("waiting", "send the documents listed above"),
        ("approved", "there is nothing more to do: support will e-mail you when it is done"),
    ],
)
def test_news_of_a_request_points_only_at_steps_it_lists(
    alice: User, smtp: SmtpServer, frozen: float, state: str, said: str
) -> None:
    queue(
        alice,
        NoticeKind.SUPPORT_PROGRESS,
        request=1,
        state=state,
        documents=["id_card"],
        support_email="support@keyfob.test",
        by="support",
    )
    [(text, html)] = delivered(smtp)
    for body in (text, html):
        assert "follow these steps" not in body
        assert f"If you asked for this, {said}" in body
