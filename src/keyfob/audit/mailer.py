"""Delivering the outbox: claim a due notice, render it, send it, retry with backoff.

Any number of senders may run at once (``keyfob send-mail``, a thread in each web worker):
a sender claims one row at a time with a compare-and-set ``UPDATE`` and sends only the rows
it won, so each notice goes out once. A claim is a lease: if its sender dies mid-send, the
row is taken over once the lease expires, which is the one case where a notice could go out
twice (at least once beats at most once for a security notice).

With no ``KEYFOB_SMTP_URL`` the messages are printed to standard output.

Logs name the outbox id, the kind, the attempt and the error's class, never an address's
password, a message body or a server's reply text.
"""

from __future__ import annotations

import email.policy
import logging
import os
import secrets
import smtplib
import socket
import ssl
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Literal, Protocol, TextIO
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connection
from django.db.models import F, Q

from keyfob.audit.app_settings import app_settings
from keyfob.audit.models import Outbox, OutboxState
from keyfob.audit.notices import SEALED, render
from keyfob.audit.signals import outbox_pass
from keyfob.core import clock, throttle
from keyfob.core.consume import consume

logger = logging.getLogger(__name__)

Security = Literal["none", "tls", "starttls"]
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("none", 25),
    "smtps": ("tls", 465),
    "smtp+starttls": ("starttls", 587),
}


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: Security
    username: str = ""
    password: str = field(default="", repr=False)


def parse_smtp_url(url: str) -> SmtpConfig:
    """Read ``smtp://``, ``smtps://`` or ``smtp+starttls://[user[:pass]@]host[:port]``.

    User and password are percent-decoded. Raises ImproperlyConfigured, whose message never
    repeats the URL (it may hold a password).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ImproperlyConfigured(
            "KEYFOB_SMTP_URL must start with smtp://, smtps:// or smtp+starttls://"
        )
    security, default_port = _SCHEMES[scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise ImproperlyConfigured("KEYFOB_SMTP_URL has an invalid port") from None
    if not parts.hostname:
        raise ImproperlyConfigured("KEYFOB_SMTP_URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ImproperlyConfigured("KEYFOB_SMTP_URL takes no path, query or fragment")
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


def error_label(exc: BaseException) -> str:
    """What the outbox and the log keep of an error: its class and SMTP code, no text."""
    label = type(exc).__name__
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _reply in exc.recipients.values()})
        label += " " + ",".join(codes)
    elif isinstance(exc, smtplib.SMTPResponseException):
        label += f" {exc.smtp_code}"
    return label[:200]


class Transport(Protocol):
    def send(self, message: EmailMessage, recipient: str) -> None: ...

    def close(self) -> None: ...


class ConsoleTransport:
    """Prints each message (its plain-text part) instead of sending it: development only."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: EmailMessage, recipient: str) -> None:
        stream = self.stream or sys.stdout
        text = message.get_body(preferencelist=("plain",))
        body = text.get_content() if isinstance(text, EmailMessage) else ""
        rule = "-" * 72
        stream.write(
            f"{rule}\n(KEYFOB_SMTP_URL is not set: this notice is printed, not sent)\n"
            f"From: {message['From']}\nTo: {recipient}\nSubject: {message['Subject']}\n\n"
            f"{body.rstrip()}\n{rule}\n"
        )
        stream.flush()

    def close(self) -> None:
        pass


class SmtpTransport:
    """One SMTP connection for a pass, opened at the first message.

    Once connecting or the connection fails, every later message of the pass fails at once
    with the same error: a server that is down costs one connection attempt per pass.
    """

    # Errors after which the connection cannot carry another message.
    _FATAL = (OSError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)

    def __init__(self, config: SmtpConfig, timeout: float) -> None:
        self.config = config
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None
        self._broken: str | None = None

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        # gethostname, not smtplib's default getfqdn, which may wait on DNS.
        helo = socket.gethostname() or "localhost"
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(
                cfg.host,
                cfg.port,
                local_hostname=helo,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=helo, timeout=self.timeout)
        try:
            if cfg.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage, recipient: str) -> None:
        if self._broken is not None:
            raise MailServerUnavailable(self._broken)
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            envelope_from = parseaddr(str(message["From"]))[1]
            self._smtp.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
        except Exception as exc:
            if self._smtp is None or isinstance(exc, self._FATAL):
                self._broken = error_label(exc)
                self.close()
            raise

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


class MailServerUnavailable(Exception):
    """The pass's SMTP connection already failed; the label says how."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


@contextmanager
def open_transport(stream: TextIO | None = None) -> Iterator[Transport]:
    """The transport ``KEYFOB_SMTP_URL`` asks for; raises ImproperlyConfigured if invalid."""
    url = app_settings.smtp_url
    transport: Transport = (
        SmtpTransport(parse_smtp_url(url), app_settings.mail_timeout_seconds)
        if url
        else ConsoleTransport(stream)
    )
    try:
        yield transport
    finally:
        transport.close()


def build_message(row: Outbox) -> EmailMessage:
    """The notice as a MIME message: plain text with an HTML alternative."""
    rendered = render(row)
    sender = app_settings.mail_from
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message = EmailMessage(policy=email.policy.SMTP)
    # Setting a header with a line break raises ValueError: no header injection.
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = row.to
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = make_msgid(idstring=f"notice{row.pk}", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


@dataclass
class SendReport:
    """What one pass did. ``due``: rows it found; the others were claimed elsewhere."""

    due: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def skipped(self) -> int:
        return self.due - self.sent - self.retrying - self.failed


def _due(now: object) -> Q:
    return Q(next_attempt_at__lte=now) & (
        Q(state=OutboxState.QUEUED) | Q(state=OutboxState.SENDING, claimed_until__lt=now)
    )


def _claim(pk: int, sender: str) -> Outbox | None:
    """Compare-and-set: take the row for ``sender`` unless another sender already has it."""
    now = clock.now()
    won = consume(
        Outbox.objects.filter(_due(now), pk=pk),
        state=OutboxState.SENDING,
        claimed_by=sender,
        claimed_until=now + timedelta(seconds=app_settings.mail_lease_seconds),
        # Counted at the claim, so a sender that dies mid-send still uses up an attempt.
        attempts=F("attempts") + 1,
    )
    return Outbox.objects.filter(pk=pk).first() if won else None


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: base, doubling, up to the cap."""
    base = app_settings.mail_backoff_seconds
    cap = app_settings.mail_backoff_max_seconds
    return timedelta(seconds=min(base * (1 << min(attempts - 1, 30)), cap))


def _finish(row: Outbox, sender: str, **changes: object) -> bool:
    """Record the outcome, only if the claim is still ours (a lease may have run out).

    A notice that leaves the queue (sent or given up) drops its sealed parameter: the
    secret it carried for its e-mail is of no use any more.
    """
    if changes.get("state") != OutboxState.QUEUED and SEALED in row.params:
        changes["params"] = {k: v for k, v in row.params.items() if k != SEALED}
    mine = Outbox.objects.filter(pk=row.pk, state=OutboxState.SENDING, claimed_by=sender)
    return mine.update(claimed_by="", claimed_until=None, **changes) == 1


def _sender_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(6)}"


def send_pending(limit: int = 100, *, stream: TextIO | None = None) -> SendReport:
    """Deliver up to ``limit`` due notices; return what happened to them.

    A failed delivery stays queued with a later ``next_attempt_at`` (see :func:`backoff`);
    after ``KEYFOB_MAIL_MAX_ATTEMPTS`` attempts it is marked failed and kept. Raises
    ImproperlyConfigured for an invalid ``KEYFOB_SMTP_URL`` (before claiming anything) and
    database errors.
    """
    report = SendReport()
    now = clock.now()
    due = list(
        Outbox.objects.filter(_due(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    report.due = len(due)
    if not due:
        return report
    sender = _sender_id()
    with open_transport(stream) as transport:
        for pk in due:
            row = _claim(pk, sender)
            if row is None:
                continue
            try:
                transport.send(build_message(row), row.to)
            except Exception as exc:
                _failed(row, sender, exc, report)
                continue
            report.sent += 1
            if _finish(row, sender, state=OutboxState.SENT, sent_at=clock.now(), last_error=""):
                logger.info("notice %s (%s) sent, attempt %s", row.pk, row.kind, row.attempts)
            else:  # the lease ran out mid-send and another sender took the row over
                logger.warning("notice %s (%s) sent after its claim ran out", row.pk, row.kind)
    return report


def send_others(limit: int = 100) -> list[tuple[str, SendReport]]:
    """Run the other outboxes the apps above keep (receivers of
    :data:`keyfob.audit.signals.outbox_pass`: back-channel logouts), up to ``limit`` rows
    each; return ``(what, report)`` for each. Never raises: a receiver's error is logged."""
    done: list[tuple[str, SendReport]] = []
    for receiver, answer in outbox_pass.send_robust(sender=SendReport, limit=limit):
        if isinstance(answer, Exception):
            logger.error(
                "outbox sender %s failed: %s",
                getattr(receiver, "__qualname__", receiver),
                error_label(answer),
            )
            continue
        what, report = answer
        done.append((str(what), report))
    return done


def prune_outbox() -> int:
    """Delete the notices sent or given up more than ``KEYFOB_OUTBOX_RETENTION_DAYS`` ago
    (by when they were queued); return how many. Queued ones are never deleted."""
    cutoff = clock.now() - timedelta(days=app_settings.outbox_retention_days)
    deleted, _ = Outbox.objects.filter(
        state__in=(OutboxState.SENT, OutboxState.FAILED), created_at__lt=cutoff
    ).delete()
    if deleted:
        logger.info("deleted %s notices older than the retention", deleted)
    return deleted


def _failed(row: Outbox, sender: str, exc: Exception, report: SendReport) -> None:
    label = exc.label if isinstance(exc, MailServerUnavailable) else error_label(exc)
    if row.attempts >= app_settings.mail_max_attempts:
        _finish(row, sender, state=OutboxState.FAILED, last_error=label)
        report.failed += 1
        logger.error(
            "notice %s (%s) given up after attempt %s: %s", row.pk, row.kind, row.attempts, label
        )
        return
    retry_at = clock.now() + backoff(row.attempts)
    _finish(row, sender, state=OutboxState.QUEUED, next_attempt_at=retry_at, last_error=label)
    report.retrying += 1
    logger.warning(
        "notice %s (%s) attempt %s failed: %s; next at %s",
        row.pk,
        row.kind,
        row.attempts,
        label,
        retry_at.isoformat(timespec="seconds"),
    )


PRUNE_EVERY_SECONDS = 3600.0


def run_loop(
    stop_event: threading.Event,
    interval: float | None = None,
    *,
    limit: int = 100,
    stream: TextIO | None = None,
) -> None:
    """Send due notices, and the other outboxes' rows (:func:`send_others`), every
    ``interval`` seconds until ``stop_event`` is set.

    Old notices are pruned (:func:`prune_outbox`), and throttle rows quiet for a day
    (:func:`keyfob.core.throttle.prune_idle`), at the first pass and hourly after.
    Never raises: a failed pass (database away, bad settings) is logged and tried again.
    """
    wait = app_settings.mail_interval_seconds if interval is None else interval
    pruned_at: float | None = None
    try:
        while not stop_event.is_set():
            full = False
            try:
                close_old_connections()
                if pruned_at is None or clock.time() - pruned_at >= PRUNE_EVERY_SECONDS:
                    prune_outbox()
                    throttle.prune_idle()
                    pruned_at = clock.time()
                report = send_pending(limit, stream=stream)
                full = report.due == limit and report.retrying == report.failed == 0
            except Exception as exc:
                logger.error("mail sender pass failed: %s", error_label(exc))
            # Apart from the mail: an SMTP server that is down or misconfigured stops
            # nothing else.
            for _what, other in send_others(limit):
                full = full or (other.due == limit and other.retrying == other.failed == 0)
            if not full:  # a full pass may have left more: go again at once
                stop_event.wait(wait)
    finally:
        connection.close()


_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def start_background_sender(interval: float | None = None) -> threading.Thread:
    """Start the daemon thread that runs :func:`run_loop`; return it (or the running one)."""
    global _thread, _stop
    with _lock:
        if _thread is not None and _thread.is_alive():
            return _thread
        _stop = threading.Event()
        _thread = threading.Thread(
            target=run_loop, args=(_stop, interval), name="keyfob-mail-sender", daemon=True
        )
        _thread.start()
        return _thread


def stop_background_sender(timeout: float = 5.0) -> None:
    """Ask the background sender to stop and wait up to ``timeout`` seconds for it."""
    with _lock:
        thread = _thread
        _stop.set()
    if thread is not None:
        thread.join(timeout)
