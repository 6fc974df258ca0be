"""send_pending() against a real SMTP server: content, language, outages, retries, leases."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from keyfob.accounts.models import User
from keyfob.audit import mailer, notices
from keyfob.audit.events import Context
from keyfob.audit.models import Outbox, OutboxState
from keyfob.audit.notices import NoticeKind
from keyfob.core import clock
from tests.audit.conftest import CONTEXT, SECURITY_NOTICES, T0, make_user
from tests.smtp import SmtpServer


def queue(user: User, kind: NoticeKind, context: Context = CONTEXT, **params: Any) -> Outbox:
    with transaction.atomic():
        row = notices.queue(user, kind, context, **params)
    assert row is not None
    return row


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content(), html.get_content()


def test_a_notice_is_delivered_with_text_and_html(
    alice: User, smtp: SmtpServer, frozen: float, settings: Any
) -> None:
    settings.KEYFOB_MAIL_FROM = "Keyfob <security@keyfob.test>"
    row = queue(alice, NoticeKind.RECOVERY_USED, remaining=3)

    report = mailer.send_pending()

    assert (report.due, report.sent, report.retrying, report.failed) == (1, 1, 0, 0)
    [(recipients, message)] = smtp.inbox.received
    assert recipients == ["alice@example.com"]
    assert message["To"] == "alice@example.com"
    assert message["From"] == "Keyfob <security@keyfob.test>"
    assert message["Subject"] == "Keyfob: Recovery code used"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    for body in (text, html):
        assert "A recovery code was used" in body
        assert "You have 3 recovery codes left." in body
        assert "10 March 2026, 14:05 (UTC)" in body  # when, in the account's zone, named
        assert "203.0.113.7" in body  # from which address
        assert "Firefox · Linux" in body  # and which browser
        assert "change your password" in body and "contact support" in body
        assert "Account → Security" in body
    assert html.lstrip().startswith("<!DOCTYPE html>") and '<html lang="en">' in html
    stored = Outbox.objects.get(pk=row.pk)
    assert stored.state == OutboxState.SENT and stored.sent_at == clock.now()
    assert stored.attempts == 1 and stored.claimed_by == "" and stored.last_error == ""
    assert mailer.send_pending().due == 0  # sent once


def test_a_notice_is_in_the_account_language_and_time_zone(
    db: None, smtp: SmtpServer, frozen: float
) -> None:
    claire = make_user("claire@example.com", language="fr", time_zone="Europe/Paris")
    queue(claire, NoticeKind.RECOVERY_USED, remaining=1)

    mailer.send_pending()

    [message] = smtp.inbox.messages
    assert message["Subject"] == "Keyfob: Code de secours utilisé"
    text, html = parts(message)
    for body in (text, html):
        assert "Bonjour," in body
        assert "Il vous reste 1 code de secours." in body
        assert "10 mars 2026, 15:05 (Europe/Paris)" in body
        assert "203.0.113.7" in body and "Firefox · Linux" in body
        assert "Compte → Sécurité" in body
    assert '<html lang="fr">' in html


EXAMPLE_PARAMS: dict[str, list[dict[str, Any]]] = {
    NoticeKind.RECOVERY_USED: [{"remaining": 0}, {"remaining": 1}, {"remaining": 7}, {}],
    NoticeKind.TWOFACTOR_OFF: [{"by": "user"}, {"by": "support"}],
    NoticeKind.TRUSTED_BROWSER: [{"browser": "Firefox · <Linux>"}],
    NoticeKind.EMAIL_CHANGED: [{"old": "o&ld@example.com", "new": "new@example.com"}, {}],
}


@pytest.mark.parametrize("kind", SECURITY_NOTICES)
def test_every_kind_renders_in_english_and_in_french(
    db: None, kind: NoticeKind, frozen: float
) -> None:
    hostile = Context(address="2001:db8::1", user_agent="<script>alert(1)</script> Firefox/1")
    for i, params in enumerate(EXAMPLE_PARAMS.get(kind, [{}])):
        english, french = (
            notices.render(
                queue(make_user(f"{lang}{i}@example.com", language=lang), kind, hostile, **params)
            )
            for lang in ("en", "fr")
        )
        for rendered in (english, french):
            assert rendered.subject.startswith("Keyfob: ")
            for body in (rendered.text, rendered.html):
                assert "{" not in body and "%(" not in body  # no template or format leftovers
                assert "(UTC)" in body
                assert ("2001:db8::1" in body) == (params.get("by") != "support")
            assert "<script>" not in rendered.html  # the user agent is escaped
            if "browser" in params:
                assert "Firefox · &lt;Linux&gt;" in rendered.html
                assert "Firefox · <Linux>" in rendered.text
        # Every sentence is translated: no line of the English text is left in the French.
        assert french.subject != english.subject
        for line in english.text.splitlines():
            assert len(line) < 8 or line not in french.text, f"untranslated: {line!r}"


def test_support_turning_2fa_off_hides_the_staff_address(
    alice: User, smtp: SmtpServer, frozen: float
) -> None:
    queue(alice, NoticeKind.TWOFACTOR_OFF, by="support")
    mailer.send_pending()
    [message] = smtp.inbox.messages
    text, html = parts(message)
    for body in (text, html):
        assert "support team turned off two-factor authentication" in body
        assert "203.0.113.7" not in body and "Firefox" not in body
        assert "(UTC)" in body


def test_a_notice_never_carries_a_secret(
    alice: User, smtp: SmtpServer, frozen: float, caplog: pytest.LogCaptureFixture
) -> None:
    """What a notice may hold is checked at queue time; here: the whole mail, and the log."""
    caplog.set_level("DEBUG", logger="keyfob.audit.mailer")
    for kind in SECURITY_NOTICES:
        queue(alice, kind)
    mailer.send_pending()
    assert len(smtp.inbox.messages) == len(SECURITY_NOTICES)
    fields = {f.name for f in Outbox._meta.get_fields()}
    assert not fields & {"body", "text", "html", "message", "subject"}
    for message in smtp.inbox.messages:
        raw = message.as_string()
        assert alice.password not in raw
    assert "Hello" not in caplog.text and "203.0.113.7" not in caplog.text


def test_an_smtp_outage_keeps_notices_queued_then_delivers_each_once(
    alice: User, make_server: Callable[..., SmtpServer], settings: Any
) -> None:
    server = make_server()  # a free port, nothing listening yet
    settings.KEYFOB_SMTP_URL = server.url()
    with clock.frozen(T0):
        for n in (3, 2, 1):
            queue(alice, NoticeKind.RECOVERY_USED, remaining=n)

        first = mailer.send_pending()

    assert (first.sent, first.retrying) == (0, 3)
    for row in Outbox.objects.all():
        assert row.state == OutboxState.QUEUED and row.attempts == 1
        assert row.next_attempt_at == clock.now().fromtimestamp(T0 + 30, clock.now().tzinfo)
        assert row.last_error == "ConnectionRefusedError"

    with clock.frozen(T0 + 10):  # backing off: nothing is due, nothing is tried
        assert mailer.send_pending().due == 0
    with clock.frozen(T0 + 31):  # still down: the wait doubles
        assert mailer.send_pending().retrying == 3
    assert {r.attempts for r in Outbox.objects.all()} == {2}
    assert {r.next_attempt_at.timestamp() for r in Outbox.objects.all()} == {T0 + 31 + 60}

    server.start()  # the server is back, on the same port
    with clock.frozen(T0 + 60):
        assert mailer.send_pending().due == 0  # not yet due
    with clock.frozen(T0 + 91):
        back = mailer.send_pending()
        again = mailer.send_pending()

    assert (back.sent, back.retrying) == (3, 0) and again.due == 0
    assert len(server.inbox.messages) == 3
    assert sorted(m["Subject"] for m in server.inbox.messages) == ["Keyfob: Recovery code used"] * 3
    assert all(r.state == OutboxState.SENT and r.attempts == 3 for r in Outbox.objects.all())


def test_backoff_doubles_up_to_the_cap() -> None:
    waits = [mailer.backoff(n).total_seconds() for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert mailer.backoff(500) == timedelta(hours=1)


def test_the_default_attempts_span_about_two_days() -> None:
    from keyfob.audit.app_settings import app_settings

    n = app_settings.mail_max_attempts
    span = sum(mailer.backoff(k).total_seconds() for k in range(1, n))
    assert 1.9 * 86400 < span < 2.1 * 86400, (
        f"KEYFOB_MAIL_MAX_ATTEMPTS={n} gives up after {span / 3600:.1f} h: 55 makes ~2 days"
    )


def test_a_notice_is_given_up_after_the_last_attempt_and_kept(alice: User, settings: Any) -> None:
    settings.KEYFOB_SMTP_URL = "smtp://127.0.0.1:1"  # refused
    settings.KEYFOB_MAIL_MAX_ATTEMPTS = 3
    with clock.frozen(T0):
        row = queue(alice, NoticeKind.PASSWORD_CHANGED)
    outcomes = []
    at = T0
    for _ in range(3):
        with clock.frozen(at):
            report = mailer.send_pending()
        outcomes.append((report.retrying, report.failed))
        at += 3600
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    row.refresh_from_db()
    assert row.state == OutboxState.FAILED and row.attempts == 3
    assert row.last_error == "ConnectionRefusedError"
    with clock.frozen(at + 86400):
        assert mailer.send_pending().due == 0


def test_a_claim_whose_sender_died_is_taken_over_after_the_lease(
    alice: User, smtp: SmtpServer
) -> None:
    with clock.frozen(T0):
        row = queue(alice, NoticeKind.TWOFACTOR_ON)
        # A sender claimed it and died before sending.
        Outbox.objects.filter(pk=row.pk).update(
            state=OutboxState.SENDING,
            claimed_by="dead",
            claimed_until=clock.now() + timedelta(minutes=5),
            attempts=1,
        )
        assert mailer.send_pending().due == 0  # the lease still holds
    with clock.frozen(T0 + 301):
        assert mailer.send_pending().sent == 1
    row.refresh_from_db()
    assert row.state == OutboxState.SENT and row.attempts == 2
    assert len(smtp.inbox.messages) == 1


def test_a_refused_recipient_is_retried_and_the_error_keeps_only_its_code(
    alice: User, make_server: Callable[..., SmtpServer], settings: Any, frozen: float
) -> None:
    class Refuse:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, *a: Any) -> str:
            return "550 5.1.1 no such user alice@example.com"

    server = make_server()
    server.inbox = Refuse()  # type: ignore[assignment]
    server.start()
    settings.KEYFOB_SMTP_URL = server.url()
    row = queue(alice, NoticeKind.TWOFACTOR_ON)
    assert mailer.send_pending().retrying == 1
    row.refresh_from_db()
    assert row.last_error == "SMTPRecipientsRefused 550"
    assert row.state == OutboxState.QUEUED


def test_without_an_smtp_url_mail_is_printed(alice: User, settings: Any, frozen: float) -> None:
    settings.KEYFOB_SMTP_URL = ""
    queue(alice, NoticeKind.TWOFACTOR_ON)
    out = io.StringIO()
    report = mailer.send_pending(stream=out)
    assert report.sent == 1
    printed = out.getvalue()
    assert "To: alice@example.com" in printed
    assert "Subject: Keyfob: Two-factor authentication turned on" in printed
    assert "Two-factor authentication was turned on for your account." in printed
    assert Outbox.objects.get().state == OutboxState.SENT


def test_send_mail_command_makes_one_pass(alice: User, smtp: SmtpServer, frozen: float) -> None:
    for kind in (NoticeKind.TWOFACTOR_ON, NoticeKind.RECOVERY_REGENERATED):
        queue(alice, kind)
    out = io.StringIO()
    call_command("send-mail", stdout=out)
    assert "sent 2, to retry 0, failed 0" in out.getvalue()
    assert len(smtp.inbox.messages) == 2
    out = io.StringIO()
    call_command("send-mail", stdout=out)
    assert "sent 0" in out.getvalue()
    assert len(smtp.inbox.messages) == 2


def test_send_mail_command_rejects_a_bad_url_without_echoing_it(alice: User, settings: Any) -> None:
    from django.core.management.base import CommandError

    settings.KEYFOB_SMTP_URL = "http://user:hunter2@mail.example.com"
    queue(alice, NoticeKind.TWOFACTOR_ON)
    with pytest.raises(CommandError) as caught:
        call_command("send-mail", stdout=io.StringIO())
    assert "hunter2" not in str(caught.value)
    row = Outbox.objects.get()
    assert row.state == OutboxState.QUEUED and row.attempts == 0  # nothing was used up


def test_a_notice_that_cannot_be_rendered_is_retried_not_lost(
    alice: User, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch, frozen: float
) -> None:
    def broken(row: Outbox) -> Any:
        raise RuntimeError("a template bug")

    monkeypatch.setattr(mailer, "render", broken)
    queue(alice, NoticeKind.TWOFACTOR_ON)
    queue(alice, NoticeKind.PASSWORD_CHANGED)
    report = mailer.send_pending()
    assert (report.sent, report.retrying) == (0, 2)
    assert {r.last_error for r in Outbox.objects.all()} == {"RuntimeError"}
    assert smtp.inbox.messages == []


def test_sent_and_failed_notices_are_deleted_after_the_retention(
    alice: User, smtp: SmtpServer, settings: Any
) -> None:
    with clock.frozen(T0):
        sent, failed, queued = (queue(alice, NoticeKind.TWOFACTOR_ON) for _ in range(3))
        Outbox.objects.filter(pk=sent.pk).update(state=OutboxState.SENT)
        Outbox.objects.filter(pk=failed.pk).update(state=OutboxState.FAILED)
        # queued: still waiting for a working SMTP server, however old
        Outbox.objects.filter(pk=queued.pk).update(next_attempt_at=clock.now() + timedelta(days=99))
    with clock.frozen(T0 + 30 * 86400 - 1):
        assert mailer.prune_outbox() == 0
    with clock.frozen(T0 + 30 * 86400 + 1):
        recent = queue(alice, NoticeKind.RECOVERY_REGENERATED)
        Outbox.objects.filter(pk=recent.pk).update(state=OutboxState.SENT)
        settings.KEYFOB_OUTBOX_RETENTION_DAYS = 60
        assert mailer.prune_outbox() == 0
        settings.KEYFOB_OUTBOX_RETENTION_DAYS = 30
        assert mailer.prune_outbox() == 2
    assert set(Outbox.objects.values_list("pk", flat=True)) == {queued.pk, recent.pk}


@pytest.mark.django_db(transaction=True)
def test_send_mail_and_the_background_sender_prune(alice: User, smtp: SmtpServer) -> None:
    with clock.frozen(T0):
        old = queue(alice, NoticeKind.TWOFACTOR_ON)
        call_command("send-mail", stdout=io.StringIO())
    assert Outbox.objects.get(pk=old.pk).state == OutboxState.SENT
    with clock.frozen(T0 + 31 * 86400):
        out = io.StringIO()
        call_command("send-mail", stdout=out)
    assert "deleted 1 past the retention" in out.getvalue()
    assert not Outbox.objects.filter(pk=old.pk).exists()

    # The background sender prunes at its first pass (then hourly), in its own thread.
    again = queue(alice, NoticeKind.RECOVERY_REGENERATED)
    Outbox.objects.filter(pk=again.pk).update(
        state=OutboxState.SENT, created_at=clock.now() - timedelta(days=31)
    )
    stop = threading.Event()
    thread = threading.Thread(target=mailer.run_loop, args=(stop, 0.05))
    thread.start()
    try:
        for _ in range(200):  # at most 10 s
            if not Outbox.objects.filter(pk=again.pk).exists():
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert not Outbox.objects.filter(pk=again.pk).exists()
