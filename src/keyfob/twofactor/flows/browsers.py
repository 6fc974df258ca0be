"""Trusted browsers: a random token in a cookie, stored hashed, replaced at each use."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from keyfob.accounts.models import User
from keyfob.accounts.proofs import require_recent_auth
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.audit.useragent import describe
from keyfob.core import clock
from keyfob.core.consume import consume
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.models import TrustedBrowser


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def trust_browser(user: User, context: Context) -> str:
    """Trust this browser for the configured days; return the cookie's token."""
    token = secrets.token_urlsafe(32)
    now = clock.now()
    label = describe(context.user_agent)
    with transaction.atomic():
        TrustedBrowser.objects.create(
            user=user,
            digest=_token_digest(token),
            label=label,
            address=context.address,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(days=app_settings.trust_days),
        )
        record(user, EventKind.TRUSTED_ADDED, context, browser=label)
        notices.queue(user, NoticeKind.TRUSTED_BROWSER, context, browser=label)
    return token


def use_trusted_browser(user: User, token: str, context: Context) -> str | None:
    """After a right password: if ``token`` trusts this browser for ``user``, replace it.

    Returns the new token (the old one stops working at once), or None when the token is
    unknown, revoked, expired, another account's, or was just used by someone else.
    """
    if not token or len(token) > 100:
        return None
    now = clock.now()
    old = _token_digest(token)
    row = TrustedBrowser.objects.filter(
        user=user, digest=old, revoked_at__isnull=True, expires_at__gt=now
    ).first()
    if row is None:
        return None
    new = secrets.token_urlsafe(32)
    unused = TrustedBrowser.objects.filter(pk=row.pk, digest=old, revoked_at__isnull=True)
    swapped = consume(unused, digest=_token_digest(new), last_used_at=now, address=context.address)
    return new if swapped else None


def trusted_browsers(user: User) -> list[TrustedBrowser]:
    return list(
        TrustedBrowser.objects.filter(
            user=user, revoked_at__isnull=True, expires_at__gt=clock.now()
        )
    )


def revoke_on_credentials_change(user: User, **_kwargs: Any) -> None:
    """A new password or address must not be skipped by a browser trusted under the old
    one (receiver of accounts' ``credentials_changed``, in the change's transaction)."""
    TrustedBrowser.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=clock.now())


def revoke_trusted_browsers(
    request: HttpRequest, user: User, context: Context, pk: int | None = None
) -> int:
    """Revoke one trusted browser (``pk``) or all of them; return how many. Raises
    ``ReauthRequired`` without a recent confirmation in the session of ``request``."""
    require_recent_auth(request)
    with transaction.atomic():
        rows = TrustedBrowser.objects.filter(user=user, revoked_at__isnull=True)
        if pk is not None:
            rows = rows.filter(pk=pk)
        count = rows.update(revoked_at=clock.now())
        if count:
            record(user, EventKind.TRUSTED_REVOKED, context, count=count)
    return count
