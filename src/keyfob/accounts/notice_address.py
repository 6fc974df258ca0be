"""A second address for security notices (Account → Security): added with a code e-mailed to
it, changed or removed after a recent confirmation, each time told to both addresses.

It is for notices only: :func:`keyfob.audit.notices.queue` copies there every notice that
goes to the sign-in address, except codes and address confirmations. It never receives a
reset code, never signs in (nothing looks an account up by it), and support never checks
identity through it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from keyfob.accounts.addresses import normal_email
from keyfob.accounts.flows import may_send_today, require_recent_auth
from keyfob.accounts.models import NoticeEmailChange, User
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind
from keyfob.audit.notices import NoticeKind
from keyfob.core import mailedcodes
from keyfob.otp import KeyfobError

CODE_DIGITS = 8
CODE_MINUTES = 30
CODE_TRIES = 5
# Confirmation mails an account may send in a day (each to an address of its choosing).
CODES_PER_DAY = 5

CODES = mailedcodes.CodeKind(
    purpose="keyfob.accounts.notice-email",
    seal="notice-email",
    digits=CODE_DIGITS,
    drop_seal=notices.drop_seal,
)


class NoticeEmailLost(KeyfobError):
    """No address to confirm: none started, it expired, or too many wrong codes."""

    code = "notice_email_lost"


class WrongNoticeCode(KeyfobError):
    code = "wrong_notice_code"

    def __init__(self, left: int) -> None:
        super().__init__("wrong code")
        self.left = left


class NoticeEmailLimit(KeyfobError):
    """The account sent ``CODES_PER_DAY`` confirmation mails in the last day."""

    code = "notice_email_limit"


class SameAsSignIn(KeyfobError):
    """The second address is the sign-in address (in Keyfob's normal form)."""

    code = "same_as_signin"


def unseal_notice_code(params: dict[str, Any]) -> str:
    """The code a NOTICE_EMAIL_CONFIRM notice carries, for its e-mail; '' once it is spent."""
    return notices.unseal(params, CODES.seal_context(str(params["nonce"])))


def _live(user: User) -> QuerySet[NoticeEmailChange]:
    return CODES.live(NoticeEmailChange.objects.filter(user=user), CODE_TRIES)


def pending(user: User) -> str | None:
    """The address waiting for its code, if any."""
    row = _live(user).first()
    return None if row is None else row.email


def start(request: HttpRequest, user: User, email: str) -> None:
    """E-mail a code to ``email``; it becomes the second address once the code is typed back
    (:func:`confirm`). Raises :class:`ReauthRequired`, :class:`SameAsSignIn` and
    :class:`NoticeEmailLimit`, having sent nothing."""
    require_recent_auth(request)
    email = normal_email(email)
    if email == user.email:
        raise SameAsSignIn()
    context = Context.from_request(request)
    with transaction.atomic():
        if not may_send_today(user, EventKind.NOTICE_EMAIL_CODE_SENT, CODES_PER_DAY):
            raise NoticeEmailLimit()
        mailedcodes.start(
            CODES,
            NoticeEmailChange.objects.all(),
            key={"user": user},
            lifetime=timedelta(minutes=CODE_MINUTES),
            queue=lambda sealed, nonce: notices.queue(
                user,
                NoticeKind.NOTICE_EMAIL_CONFIRM,
                context,
                to=email,
                new=email,
                nonce=nonce,
                minutes=CODE_MINUTES,
                sealed=sealed,
            ),
            email=email,
        )
        record(user, EventKind.NOTICE_EMAIL_CODE_SENT, context, new=email)


def confirm(request: HttpRequest, user: User, code: str) -> str:
    """Make the address waiting the second address if ``code`` is the one e-mailed to it;
    return it. Raises :class:`WrongNoticeCode` (tries left) or :class:`NoticeEmailLost`; a
    wrong code is counted (committed) before the error is raised."""
    row = _live(user).first()
    if row is None:
        raise NoticeEmailLost()
    failure: KeyfobError
    with transaction.atomic():
        checked = mailedcodes.check(
            CODES, _live(user).filter(pk=row.pk), row, code, tries=CODE_TRIES
        )
        if checked.used:
            _set(request, user, row.email)
            return row.email
        failure = (
            NoticeEmailLost()
            if checked.right or checked.left == 0
            else WrongNoticeCode(checked.left)
        )
    raise failure


def remove(request: HttpRequest, user: User) -> None:
    """Remove the second address. Raises :class:`ReauthRequired` without a recent
    confirmation."""
    require_recent_auth(request)
    with transaction.atomic():
        _set(request, user, "")


def _set(request: HttpRequest, user: User, email: str) -> None:
    """In the caller's transaction: store the second address (or none), record it, and tell
    the sign-in address (with its copy to the new second address) and the one replaced."""
    context = Context.from_request(request)
    locked = User.objects.select_for_update().get(pk=user.pk)
    old = locked.notice_email
    User.objects.filter(pk=user.pk).update(notice_email=email)
    user.notice_email = email
    record(user, EventKind.NOTICE_EMAIL_CHANGED, context, old=old, new=email)
    notices.queue(user, NoticeKind.NOTICE_EMAIL_CHANGED, context, old=old, new=email)
    if old and old != email:
        notices.queue(user, NoticeKind.NOTICE_EMAIL_CHANGED, context, to=old, old=old, new=email)
