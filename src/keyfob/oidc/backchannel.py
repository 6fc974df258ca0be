"""Back-channel logout, the side effects: queue a delivery in the transaction that ended a
session, deliver it (a fresh logout token POSTed to the app) with retries, prune.

Any number of senders may run at once (``keyfob send-mail``, the thread in each web
worker: the audit outbox's sender runs this through its ``outbox_pass`` signal). A sender
claims a row with a compare-and-set ``UPDATE`` and posts only the rows it won, so each
logout goes out once; a claim is a lease, taken over if its sender died mid-send.

Logs name the delivery, the app and the outcome (an HTTP status or an error's class),
never the token nor the app's reply.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.db.models import F, Q

from keyfob.audit.app_settings import app_settings as audit_settings
from keyfob.audit.mailer import SendReport, backoff
from keyfob.core import clock
from keyfob.core.consume import consume
from keyfob.oidc import keys, logout_token
from keyfob.oidc.app_settings import app_settings
from keyfob.oidc.models import Authorization, DeliveryState, LogoutDelivery

logger = logging.getLogger(__name__)

WHAT = "back-channel logouts"


def https_or_loopback(uri: str) -> bool:
    """Where a logout token may be posted: https, or http to this very machine (like the
    redirect URIs), no fragment (the spec's rule for the URI)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if parts.fragment or not parts.hostname:
        return False
    return parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
    )


# --- queue -------------------------------------------------------------------------------


def queue(authorizations: Iterable[Authorization]) -> int:
    """Owe one logout to each app (with a back-channel URI, not revoked) and session among
    ``authorizations``, which just ended; call inside the transaction that ended them.
    Returns how many deliveries were queued."""
    owed: dict[tuple[int, str], Authorization] = {}
    for found in authorizations:
        client = found.client
        if not client.backchannel_logout_uri or client.revoked_at is not None:
            continue
        # One per (app, sid); without a sid (no sign-in record), one per (app, person).
        owed.setdefault((client.pk, found.sid or f"sub:{found.user_id}"), found)
    LogoutDelivery.objects.bulk_create(
        LogoutDelivery(
            client=found.client,
            subject=str(found.user_id),  # the ID token's sub (django-oauth-toolkit's)
            sid=found.sid,
            issuer=found.issuer,
        )
        for found in owed.values()
    )
    return len(owed)


# --- deliver -----------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (a failure), never followed: the token goes only to the URI
    the operator registered."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def post(uri: str, token: str) -> str:
    """POST ``logout_token`` to ``uri``; return "" when the app answered 200 or 204, else
    what went wrong ("HTTP 500", an error's class). Never raises for the network."""
    if not https_or_loopback(uri):
        return "refused URI"
    body = urlencode({"logout_token": token}).encode()
    # https or loopback http only, checked just above: never file: or another scheme.
    request = urllib.request.Request(  # noqa: S310
        uri,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Keyfob back-channel logout",
        },
    )
    try:
        with _opener.open(request, timeout=app_settings.logout_timeout_seconds) as answer:
            status = int(answer.status)
            answer.read(4096)  # politely drained, never kept
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        exc.close()
    except urllib.error.URLError as exc:
        reason = exc.reason
        return (type(reason).__name__ if isinstance(reason, BaseException) else "URLError")[:200]
    except (OSError, ValueError) as exc:  # a timeout, a reset, a bad port
        return type(exc).__name__[:200]
    return "" if status in (200, 204) else f"HTTP {status}"


def _due(now: object) -> Q:
    return Q(next_attempt_at__lte=now) & (
        Q(state=DeliveryState.QUEUED) | Q(state=DeliveryState.SENDING, claimed_until__lt=now)
    )


def _claim(pk: int, sender: str) -> LogoutDelivery | None:
    """Compare-and-set: take the row for ``sender`` unless another sender already has it."""
    now = clock.now()
    won = consume(
        LogoutDelivery.objects.filter(_due(now), pk=pk),
        state=DeliveryState.SENDING,
        claimed_by=sender,
        claimed_until=now + timedelta(seconds=app_settings.logout_lease_seconds),
        attempts=F("attempts") + 1,  # counted at the claim: a dead sender uses one up
    )
    return LogoutDelivery.objects.select_related("client").filter(pk=pk).first() if won else None


def _finish(row: LogoutDelivery, sender: str, **changes: object) -> bool:
    """Record the outcome, only if the claim is still ours (a lease may have run out)."""
    mine = LogoutDelivery.objects.filter(pk=row.pk, state=DeliveryState.SENDING, claimed_by=sender)
    return mine.update(claimed_by="", claimed_until=None, **changes) == 1


def token_for(row: LogoutDelivery) -> str:
    """A fresh logout token for ``row``, signed by the current signing key."""
    key = keys.current()
    issuer = row.issuer or app_settings.issuer
    payload = logout_token.claims(
        issuer=issuer,
        audience=row.client.client_id,
        subject=row.subject,
        sid=row.sid,
        now=clock.time(),
    )
    return logout_token.sign(payload, key.jwk, key.kid)


def deliver_pending(limit: int = 100) -> SendReport:
    """Deliver up to ``limit`` due logouts; return what happened to them (``sent`` counts
    those the app accepted). A failure is retried after :func:`keyfob.audit.mailer.backoff`;
    after ``logout_max_attempts`` the row is marked failed and kept until pruned."""
    report = SendReport()
    now = clock.now()
    due = list(
        LogoutDelivery.objects.filter(_due(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    report.due = len(due)
    if not due:
        return report
    sender = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(6)}"
    for pk in due:
        row = _claim(pk, sender)
        if row is None:
            continue
        name = row.client.name
        try:
            problem = post(row.client.backchannel_logout_uri, token_for(row))
        except Exception as exc:  # the key ring or the database: this row waits
            problem = type(exc).__name__[:200]
        if not problem:
            report.sent += 1
            _finish(
                row,
                sender,
                state=DeliveryState.DELIVERED,
                delivered_at=clock.now(),
                last_status="delivered",
            )
            logger.info("logout %s to app %r delivered, attempt %s", row.pk, name, row.attempts)
        elif row.attempts >= app_settings.logout_max_attempts:
            report.failed += 1
            _finish(row, sender, state=DeliveryState.FAILED, last_status=problem)
            logger.error(
                "logout %s to app %r given up after attempt %s: %s",
                row.pk,
                name,
                row.attempts,
                problem,
            )
        else:
            report.retrying += 1
            retry_at = clock.now() + backoff(row.attempts)
            _finish(
                row,
                sender,
                state=DeliveryState.QUEUED,
                next_attempt_at=retry_at,
                last_status=problem,
            )
            logger.warning(
                "logout %s to app %r attempt %s failed: %s; next at %s",
                row.pk,
                name,
                row.attempts,
                problem,
                retry_at.isoformat(timespec="seconds"),
            )
    return report


def prune(now: Any = None) -> int:
    """Delete the logouts delivered or given up more than ``KEYFOB_OUTBOX_RETENTION_DAYS``
    ago (by when they were queued); return how many. Queued ones are never deleted."""
    cutoff = (now or clock.now()) - timedelta(days=audit_settings.outbox_retention_days)
    deleted, _ = LogoutDelivery.objects.filter(
        state__in=(DeliveryState.DELIVERED, DeliveryState.FAILED), created_at__lt=cutoff
    ).delete()
    return deleted
