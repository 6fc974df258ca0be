"""E-mail notices of security changes: queued in the change's transaction, rendered to send.

:func:`queue` only writes an :class:`Outbox` row (DESIGN.md invariant 4): it never touches
the network, so an SMTP outage cannot slow or break the change. The sender in
:mod:`keyfob.audit.mailer` delivers the rows later, with retries.

The message is rendered when it is sent, not when it is queued: the table then holds facts
(kind, plain parameters, address, browser, time) and never a message body, and a fixed
template or translation reaches notices still waiting in the outbox. The account's language
and time zone are recorded at queue time, so the notice reads as the account was set when
it happened, even if the account is changed or deleted meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import formats, translation

from keyfob.audit.app_settings import app_settings
from keyfob.audit.events import Context
from keyfob.audit.models import NoticeKind, Outbox
from keyfob.audit.useragent import describe
from keyfob.core import clock, keyring

__all__ = ["SEALED", "NoticeKind", "Outbox", "Rendered", "drop_seal", "queue", "render", "unseal"]

# A notice says what happened, never with what: a parameter by one of these names is refused
# so that no code, secret or password can end up in the outbox or in a mail.
_FORBIDDEN_PARAMS = frozenset({"code", "codes", "secret", "password", "token", "key", "otp"})

# The one parameter that may hold a secret for the e-mail (encrypted with the key ring, as
# a support code is); the sender drops it once the notice is sent or given up.
SEALED = "sealed"
WHEN_FORMAT = "j F Y, H:i"


# Warnings whose cause anyone holding the password (or a copied key) can repeat: one an hour
# tells the holder as much as a hundred would. So do a server's requests to link its logins
# (the Security page lists every request waiting).
_AT_MOST_HOURLY = frozenset(
    {NoticeKind.WRONG_CODES, NoticeKind.KEY_CLONE, NoticeKind.SSH_LINK_REQUESTED}
)

# What goes only to the address it names, never to the second address for security notices:
# a code, and what confirms an address. (Any notice carrying a sealed secret is never copied
# either, whatever its kind.)
_NEVER_COPIED = frozenset(
    {
        NoticeKind.EMAIL_CONFIRM,
        NoticeKind.PASSWORD_RESET_CODE,
        NoticeKind.SUPPORT_CODE,
        NoticeKind.LOST_EMAIL_CODE,
        NoticeKind.LOST_EMAIL_RECEIVED,
        NoticeKind.NOTICE_EMAIL_CONFIRM,
        NoticeKind.TEAM_INVITATION,
    }
)


def queue(
    user: Any,
    kind: NoticeKind,
    context: Context,
    *,
    to: str | None = None,
    language: str = "",
    **params: Any,
) -> Outbox | None:
    """Write one notice to the outbox inside the caller's transaction; return the row.

    ``to`` defaults to ``user.email`` (pass the old address on an e-mail change); a notice to
    that default address is also written, as a second row, to the account's second address
    for security notices (``user.notice_email``) if it has one, unless it carries a code or
    confirms an address (:data:`_NEVER_COPIED`, or a sealed parameter). ``params``
    are plain JSON values the notice's template uses: ``remaining`` (RECOVERY_USED), ``by``
    ("user" or "support", TWOFACTOR_OFF), ``browser`` (TRUSTED_BROWSER), ``old``/``new``
    (EMAIL_CHANGED). ``user`` is None for a notice to an address no account uses (a password
    reset asked for it), which then needs ``to`` and ``language``.

    The notice is written in ``language`` if given, else in the language the portal last
    showed the account (``last_language``), else in the profile's. Returns None for a
    warning an attacker can repeat at will (WRONG_CODES, KEY_CLONE) when the account already
    got one of that kind in the last hour. Raises ValueError
    for an unknown kind or a parameter that could carry a secret, TypeError for a parameter
    that is not plain JSON.
    """
    kind = NoticeKind(kind)
    forbidden = _FORBIDDEN_PARAMS.intersection(name.lower() for name in params)
    if forbidden:
        raise ValueError(f"a notice never carries {', '.join(sorted(forbidden))}")
    json.dumps(params, allow_nan=False)  # plain JSON only; raises TypeError/ValueError
    now = clock.now()
    row = Outbox(
        user=user,
        to=to or user.email,
        kind=kind,
        params=params,
        language=_language(
            language or getattr(user, "last_language", "") or getattr(user, "language", "")
        ),
        time_zone=getattr(user, "time_zone", "") or "UTC",
        address=context.address,
        user_agent=context.user_agent[:300],
        created_at=now,
        next_attempt_at=now,
    )
    copy_to = ""
    if to is None and kind not in _NEVER_COPIED and SEALED not in params:
        copy_to = str(getattr(user, "notice_email", "") or "")
    if kind not in _AT_MOST_HOURLY:
        row.save()
        _copy(row, copy_to)
        return row
    # Its own (nested) transaction, so the check and the insert hold the account's row lock
    # together even if a caller forgot the atomic block: two wrong codes at once, on two
    # servers, still make one notice. SQLite ignores FOR UPDATE but Keyfob's SQLite
    # transactions start IMMEDIATE, which serialises writers the same way.
    with transaction.atomic():
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        since = now - timedelta(seconds=app_settings.wrong_codes_notice_seconds)
        recent = Outbox.objects.filter(user=user, kind=kind, created_at__gt=since)
        if recent.exists():
            return None
        row.save()
        _copy(row, copy_to)
    return row


# Notices to an address someone typed, which may be a stranger's (a typo): they never say
# where the request came from.
_TO_A_TYPED_ADDRESS = frozenset(
    {
        NoticeKind.EMAIL_CONFIRM,
        NoticeKind.NOTICE_EMAIL_CONFIRM,
        NoticeKind.LOST_EMAIL_CODE,
        NoticeKind.LOST_EMAIL_RECEIVED,
        NoticeKind.TEAM_INVITATION,
    }
)


def _copy(row: Outbox, to: str) -> None:
    """The same notice to the second address for security notices (in the same transaction)."""
    if to and to != row.to:
        Outbox.objects.create(
            user=row.user,
            to=to,
            kind=row.kind,
            params=row.params,
            language=row.language,
            time_zone=row.time_zone,
            address=row.address,
            user_agent=row.user_agent,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
        )


def unseal(params: dict[str, Any], context: str) -> str:
    """The secret a notice's parameters carry for its e-mail, sealed under ``context``
    with the key ring; '' once it was dropped (spent, sent or given up)."""
    sealed = params.get(SEALED)
    if not isinstance(sealed, str):
        return ""
    return keyring.decrypt(sealed, context=context).decode()


def drop_seal(outbox_id: int | None) -> None:
    """Remove the sealed secret from a notice once it is spent (used, replaced, expired):
    an e-mail rendered later says the code is no longer valid."""
    if outbox_id is None:
        return
    row = Outbox.objects.filter(pk=outbox_id).first()
    if row is not None and SEALED in row.params:
        params = {k: v for k, v in row.params.items() if k != SEALED}
        Outbox.objects.filter(pk=row.pk).update(params=params)


def _language(code: str) -> str:
    known = {lang for lang, _name in settings.LANGUAGES}
    return code if code in known else settings.LANGUAGE_CODE


def _zone(name: str) -> tuple[ZoneInfo, str]:
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC"), "UTC"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(row: Outbox) -> Rendered:
    """The notice's subject, plain text and HTML in the language recorded with it."""
    zone, zone_name = _zone(row.time_zone)
    language = _language(row.language)
    with translation.override(language):
        when: datetime = row.created_at.astimezone(zone)
        subject = f"{app_settings.site_name}: {NoticeKind(row.kind).label}"
        context = {
            "subject": subject,
            "kind": row.kind,
            "params": row.params,
            "site_name": app_settings.site_name,
            "when": formats.date_format(when, WHEN_FORMAT),
            "zone": zone_name,
            "address": row.address or "",
            "browser": str(row.params.get("browser") or describe(row.user_agent)),
            "language": language,
            # Support acts for the customer: its staff's address and browser are not theirs
            # to read, and would tell them nothing. A code for a new address may reach a
            # stranger (a typo): the account holder's whereabouts are not theirs either.
            # Nor are they for whoever reads a reset notice sent to an address no account uses.
            "show_where": row.params.get("by") != "support"
            and row.kind not in _TO_A_TYPED_ADDRESS
            and row.params.get("known") is not False,
        }
        # notices/<kind>.txt and .html are the owning app's (extending audit/notices/base.*),
        # so the template helpers a notice loads are that app's: audit loads no feature app.
        text = render_to_string(f"notices/{row.kind}.txt", context)
        html = render_to_string(f"notices/{row.kind}.html", context)
    return Rendered(subject=" ".join(subject.split()), text=_tidy(text), html=html)


def _tidy(text: str) -> str:
    """Template tags leave blank lines; keep at most one in a row."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out) + "\n"
