"""Teams' flows (issue 27): invite, withdraw, decline, accept, change a grant, remove a
member, leave, the owner's defaults. Each is one transaction that writes an event on both
accounts and queues a notice to both (DESIGN.md invariant 4).

Who may do what is decided here, from the request's signed-in account, not by the pages:
the owner-only flows act on ``request.user``'s own grants and invitations (another
owner's are :class:`NotFound`), so a member can neither invite for the account they act
for nor change their own rights. No flow here touches a member's authenticators: an owner
can never turn a member's two-factor authentication off.

What a grant gives, and when, is :mod:`keyfob.teams.rules`' alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from keyfob.accounts import proofs
from keyfob.accounts.addresses import normal_email
from keyfob.accounts.models import User
from keyfob.audit import notices
from keyfob.audit.events import Context, record
from keyfob.audit.models import EventKind, NoticeKind, SecurityEvent
from keyfob.core import clock, mailedcodes
from keyfob.teams import signals
from keyfob.teams.app_settings import app_settings
from keyfob.teams.errors import (
    AlreadyMember,
    BadGrant,
    InvitationLost,
    InviteLimit,
    NotFound,
    NotYourInvitation,
    SelfInvite,
    TeamError,
    WrongInvitationCode,
)
from keyfob.teams.logins import owner_logins
from keyfob.teams.models import Grant, Invitation, Rule, TeamSettings
from keyfob.teams.rules import live_grants

__all__ = [
    "INVITE_CODES",
    "AlreadyMember",
    "BadGrant",
    "InvitationLost",
    "InviteLimit",
    "NotFound",
    "NotYourInvitation",
    "SelfInvite",
    "TeamError",
    "WrongInvitationCode",
    "accept",
    "change_grant",
    "decline",
    "defaults_of",
    "grants_given",
    "grants_held",
    "invitations_for",
    "invite",
    "leave",
    "pending_invitations",
    "remove",
    "set_defaults",
    "withdraw",
]

INVITE_DAYS = 7
INVITE_CODE_DIGITS = 8
INVITE_CODE_TRIES = 5
# Invitations an owner may send in a day: each is a mail to an address of their choosing.
INVITES_PER_DAY = 20
MAX_GRACE_DAYS = 90

INVITE_CODES = mailedcodes.CodeKind(
    purpose="keyfob.teams.invitation",
    seal="team-invitation",
    digits=INVITE_CODE_DIGITS,
    drop_seal=notices.drop_seal,
)


def unseal_invitation_code(params: dict[str, Any]) -> str:
    """The code a TEAM_INVITATION notice carries, for its e-mail; '' once it is spent."""
    return notices.unseal(params, INVITE_CODES.seal_context(str(params["nonce"])))


def who(user: User) -> str:
    """How a notice or an event names a person: name and address."""
    name = (user.display_name or "").strip()
    return f"{name} <{user.email}>" if name else user.email


@dataclass(frozen=True)
class Terms:
    """What a grant gives: rights, SSH logins, the rule (and, for a new one, grace days)."""

    rights: list[str]
    logins: list[list[str]]
    rule: str
    grace_days: int = 0


def checked_terms(
    owner: User,
    rights: Iterable[str],
    logins: Iterable[Sequence[str]],
    rule: str,
    grace_days: int = 0,
) -> Terms:
    """``rights``/``logins``/``rule``/``grace_days`` as a grant of ``owner`` may hold them;
    raises :class:`BadGrant` for anything the owner cannot give. The forms check the same
    first; this is the flow's own check, whatever called it."""
    known = app_settings.rights
    wanted_rights = list(dict.fromkeys(str(r) for r in rights))
    if any(r not in known for r in wanted_rights):
        raise BadGrant()
    mine = set(owner_logins(owner))
    pairs: list[tuple[str, str]] = []
    for pair in logins:
        if len(pair) != 2:
            raise BadGrant()
        login, server = str(pair[0]), str(pair[1])
        if (login, server) not in mine:
            raise BadGrant()
        if (login, server) not in pairs:
            pairs.append((login, server))
    if rule not in Rule.values:
        raise BadGrant()
    if not isinstance(grace_days, int) or not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise BadGrant()
    return Terms(
        rights=[r for r in known if r in wanted_rights],
        logins=[[login, server] for login, server in sorted(pairs)],
        rule=str(rule),
        grace_days=grace_days,
    )


def _owner(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User) and user.is_authenticated
    return user


def _summary(rights: list[str], logins: list[list[str]], rule: str) -> dict[str, Any]:
    """What a notice and an event say a grant gives (plain JSON)."""
    return {
        "rights": list(rights),
        "logins": [f"{login}@{server}" for login, server in logins],
        "rule": str(rule),
    }


def _tell_both(
    grant_or_invitation: Grant | Invitation,
    owner: User,
    member: User | None,
    event: EventKind,
    notice: NoticeKind,
    context: Context,
    *,
    notify_member: bool = True,
    **params: Any,
) -> None:
    """The event on both accounts (the member's only if there is one) and a notice to
    both, each saying which side they are on (``notify_member`` False: the member's
    notice is another mail, the invitation itself)."""
    member_name = (
        who(member) if member is not None else str(getattr(grant_or_invitation, "email", ""))
    )
    detail = {"owner": who(owner), "member": member_name, **params}
    record(owner, event, context, side="owner", **detail)
    notices.queue(owner, notice, context, side="owner", **detail)
    if member is not None:
        record(member, event, context, side="member", **detail)
        if notify_member:
            notices.queue(member, notice, context, side="member", **detail)


# Invitations -----------------------------------------------------------------------------


def _live_invitations(rows: QuerySet[Invitation] | None = None) -> QuerySet[Invitation]:
    """Invitations still usable: not used, withdrawn, declined or expired, tries left."""
    rows = Invitation.objects.all() if rows is None else rows
    return INVITE_CODES.live(rows, INVITE_CODE_TRIES).filter(
        withdrawn_at__isnull=True, declined_at__isnull=True
    )


def pending_invitations(owner: User) -> list[Invitation]:
    """The owner's invitations still waiting for their invitee, newest first."""
    return list(_live_invitations(Invitation.objects.filter(owner=owner)))


def invitations_for(user: User) -> list[Invitation]:
    """Invitations waiting for ``user``'s own (confirmed, sign-in) address, with owners."""
    rows = Invitation.objects.filter(email=normal_email(user.email)).exclude(owner=user)
    return list(_live_invitations(rows).select_related("owner"))


def _account_with(email: str) -> User | None:
    return User.objects.filter(email=normal_email(email), is_active=True).first()


def _may_invite_today(owner: User) -> bool:
    # The owner's row lock first: two invitations sent at once cannot both pass.
    User.objects.select_for_update().filter(pk=owner.pk).first()
    since = clock.now() - timedelta(days=1)
    sent = SecurityEvent.objects.filter(
        user=owner, kind=EventKind.TEAM_INVITED, at__gt=since, detail__side="owner"
    )
    return sent.count() < INVITES_PER_DAY


def invite(
    request: HttpRequest,
    email: str,
    rights: Iterable[str],
    logins: Iterable[Sequence[str]],
    rule: str,
    grace_days: int,
) -> Invitation:
    """Mail ``email`` an invitation to act for the signed-in account (its owner), with a
    code valid :data:`INVITE_DAYS` days, single use. An earlier invitation of this owner
    to that address still waiting is replaced (its code stops working).

    An address without an account gets the same mail, which says to have an account made
    with that address (Keyfob has no self sign-up): the invitation waits for it.

    Raises ReauthRequired, :class:`SelfInvite`, :class:`AlreadyMember`,
    :class:`BadGrant`, :class:`InviteLimit`, having sent nothing."""
    proofs.require_recent_auth(request)
    owner = _owner(request)
    email = normal_email(email)
    if email == normal_email(owner.email):
        raise SelfInvite()
    terms = checked_terms(owner, rights, logins, rule, grace_days)
    invitee = _account_with(email)
    if invitee is not None and _live_grant(owner, invitee).exists():
        raise AlreadyMember()
    context = Context.from_request(request)
    now = clock.now()
    with transaction.atomic():
        if not _may_invite_today(owner):
            raise InviteLimit()
        params = {
            "owner": who(owner),
            "email": email,
            "days": INVITE_DAYS,
            "has_account": invitee is not None,
            **_summary(terms.rights, terms.logins, terms.rule),
        }
        invitation: Invitation = mailedcodes.start(
            INVITE_CODES,
            Invitation.objects.filter(owner=owner, email=email),
            lifetime=timedelta(days=INVITE_DAYS),
            retire={"withdrawn_at": now},
            queue=lambda sealed, nonce: notices.queue(
                invitee,
                NoticeKind.TEAM_INVITATION,
                context,
                to=email,
                # The owner's language for an address no account uses yet.
                language="" if invitee is not None else (owner.language or owner.last_language),
                nonce=nonce,
                sealed=sealed,
                **params,
            ),
            owner=owner,
            email=email,
            rights=terms.rights,
            logins=terms.logins,
            rule=terms.rule,
            grace_days=terms.grace_days,
        )
        _tell_both(
            invitation,
            owner,
            invitee,
            EventKind.TEAM_INVITED,
            NoticeKind.TEAM_INVITED,
            context,
            notify_member=False,
            email=email,
            **_summary(terms.rights, terms.logins, terms.rule),
        )
    return invitation


def withdraw(request: HttpRequest, invitation_id: int) -> None:
    """The owner withdraws an invitation still waiting; its code stops working. Raises
    :class:`NotFound` (not theirs, or no longer waiting)."""
    owner = _owner(request)
    context = Context.from_request(request)
    with transaction.atomic():
        live = _live_invitations(Invitation.objects.filter(pk=invitation_id, owner=owner))
        invitation = live.first()
        if invitation is None or not live.update(withdrawn_at=clock.now()):
            raise NotFound()
        notices.drop_seal(invitation.outbox_id)
        _tell_both(
            invitation,
            owner,
            _account_with(invitation.email),
            EventKind.TEAM_INVITE_WITHDRAWN,
            NoticeKind.TEAM_INVITE_ENDED,
            context,
            email=invitation.email,
            what="withdrawn",
        )


def _invitation_for(user: User, invitation_id: int) -> Invitation:
    """The invitation ``invitation_id`` still waiting, if sent to ``user``'s address.
    Raises :class:`InvitationLost` or :class:`NotYourInvitation` (nothing is compared,
    nothing counted: an invitation is used only by its address's account)."""
    invitation = (
        _live_invitations(Invitation.objects.filter(pk=invitation_id))
        .select_related("owner")
        .first()
    )
    if invitation is None or not invitation.owner.is_active:
        raise InvitationLost()
    if invitation.email != normal_email(user.email):
        raise NotYourInvitation()
    if invitation.owner_id == user.pk:
        raise SelfInvite()
    return invitation


def decline(request: HttpRequest, invitation_id: int) -> None:
    """The invitee declines an invitation sent to their address."""
    member = _owner(request)
    invitation = _invitation_for(member, invitation_id)
    context = Context.from_request(request)
    with transaction.atomic():
        if not _live_invitations(Invitation.objects.filter(pk=invitation.pk)).update(
            declined_at=clock.now()
        ):
            raise InvitationLost()
        notices.drop_seal(invitation.outbox_id)
        _tell_both(
            invitation,
            invitation.owner,
            member,
            EventKind.TEAM_INVITE_DECLINED,
            NoticeKind.TEAM_INVITE_ENDED,
            context,
            email=invitation.email,
            what="declined",
        )


def _live_grant(owner: User, member: User) -> QuerySet[Grant]:
    return Grant.objects.filter(owner=owner, member=member, ended_at__isnull=True)


def accept(request: HttpRequest, invitation_id: int, code: str) -> Grant:
    """The signed-in invitee types the invitation's code: they become a member, with the
    invitation's rights, logins (those the owner still has), rule and grace period.

    Raises :class:`InvitationLost`, :class:`NotYourInvitation`, :class:`SelfInvite`,
    :class:`AlreadyMember`, or :class:`WrongInvitationCode` (with the tries left; the try
    is counted, committed, before it is raised). Two acceptances at once: the code is used
    once, so one membership (and the partial unique constraint holds it too)."""
    member = _owner(request)
    invitation = _invitation_for(member, invitation_id)
    owner = invitation.owner
    context = Context.from_request(request)
    live = _live_invitations(Invitation.objects.filter(pk=invitation.pk))

    def not_yet_member() -> None:
        if _live_grant(owner, member).exists():
            raise AlreadyMember()

    failure: TeamError
    with transaction.atomic():
        checked = mailedcodes.check(
            INVITE_CODES,
            live,
            invitation,
            code,
            tries=INVITE_CODE_TRIES,
            before_use=not_yet_member,
        )
        if checked.used:
            Invitation.objects.filter(pk=invitation.pk).update(accepted_by=member)
            mine = {(login, server) for login, server in owner_logins(owner)}
            logins = [pair for pair in invitation.logins if tuple(pair) in mine]
            now = clock.now()
            try:
                with transaction.atomic():
                    grant = Grant.objects.create(
                        owner=owner,
                        member=member,
                        rights=list(invitation.rights),
                        logins=logins,
                        rule=invitation.rule,
                        grace_until=(
                            now + timedelta(days=invitation.grace_days)
                            if invitation.grace_days
                            else None
                        ),
                        created_at=now,
                        changed_at=now,
                        # The first reminder a day from now: the joining notice tells today.
                        reminded_at=now if invitation.grace_days else None,
                    )
            except IntegrityError:  # made a member a moment ago by another invitation
                raise AlreadyMember() from None
            _tell_both(
                grant,
                owner,
                member,
                EventKind.TEAM_JOINED,
                NoticeKind.TEAM_JOINED,
                context,
                grace_days=invitation.grace_days,
                **_summary(grant.rights, grant.logins, grant.rule),
            )
            return grant
        if checked.right or checked.left == 0:
            failure = InvitationLost()  # used meanwhile (another browser), or its last try
        else:
            failure = WrongInvitationCode(checked.left)
    raise failure


# Grants ------------------------------------------------------------------------------------


def grants_given(owner: User) -> list[Grant]:
    """The owner's members (live grants), with the members' accounts."""
    return list(
        Grant.objects.filter(owner=owner, ended_at__isnull=True)
        .select_related("member")
        .order_by("created_at", "pk")
    )


def _own_grant(owner: User, grant_id: int) -> Grant:
    grant = (
        Grant.objects.select_for_update()
        .filter(pk=grant_id, owner=owner, ended_at__isnull=True)
        .select_related("member")
        .first()
    )
    if grant is None:
        raise NotFound()
    return grant


def change_grant(
    request: HttpRequest,
    grant_id: int,
    rights: Iterable[str],
    logins: Iterable[Sequence[str]],
    rule: str,
) -> Grant:
    """The owner changes what a member's grant gives and its rule. Raises ReauthRequired,
    :class:`NotFound` (not one of the signed-in account's own grants: a member cannot
    change what they were given), :class:`BadGrant`."""
    proofs.require_recent_auth(request)
    owner = _owner(request)
    terms = checked_terms(owner, rights, logins, rule)
    context = Context.from_request(request)
    with transaction.atomic():
        grant = _own_grant(owner, grant_id)
        before = _summary(grant.rights, grant.logins, grant.rule)
        grant.rights, grant.logins, grant.rule = terms.rights, terms.logins, terms.rule
        grant.changed_at = clock.now()
        grant.save(update_fields=["rights", "logins", "rule", "changed_at"])
        after = _summary(grant.rights, grant.logins, grant.rule)
        _tell_both(
            grant,
            owner,
            grant.member,
            EventKind.TEAM_GRANT_CHANGED,
            NoticeKind.TEAM_GRANT_CHANGED,
            context,
            before=before,
            **after,
        )
        signals.grant_changed.send(sender=Grant, grant=grant)
    return grant


def _end(grant: Grant, event: EventKind, context: Context, by: str) -> None:
    if not Grant.objects.filter(pk=grant.pk, ended_at__isnull=True).update(ended_at=clock.now()):
        raise NotFound()  # ended a moment ago
    grant.refresh_from_db(fields=["ended_at"])
    _tell_both(
        grant,
        grant.owner,
        grant.member,
        event,
        NoticeKind.TEAM_ENDED,
        context,
        by=by,
        **_summary(grant.rights, grant.logins, grant.rule),
    )
    signals.grant_ended.send(sender=Grant, grant=grant)


def remove(request: HttpRequest, grant_id: int) -> None:
    """The owner removes a member: the grant ends at once (the doors listen to
    ``grant_ended``). Needs a recent confirmation. Raises :class:`NotFound`."""
    proofs.require_recent_auth(request)
    owner = _owner(request)
    context = Context.from_request(request)
    with transaction.atomic():
        grant = _own_grant(owner, grant_id)
        _end(grant, EventKind.TEAM_REMOVED, context, by="owner")


def leave(request: HttpRequest, grant_id: int) -> None:
    """The member stops acting for an account. Raises :class:`NotFound`."""
    member = _owner(request)
    context = Context.from_request(request)
    with transaction.atomic():
        grant = (
            Grant.objects.select_for_update()
            .filter(pk=grant_id, member=member, ended_at__isnull=True)
            .select_related("owner")
            .first()
        )
        if grant is None:
            raise NotFound()
        grant.member = member
        _end(grant, EventKind.TEAM_LEFT, context, by="member")


def grants_held(member: User) -> list[Grant]:
    """The accounts ``member`` acts for (live grants, with owners)."""
    return live_grants(member)


# The owner's defaults ----------------------------------------------------------------------


def defaults_of(owner: User) -> TeamSettings:
    """The owner's default rule and grace days for new grants (unsaved defaults if none)."""
    found = TeamSettings.objects.filter(owner=owner).first()
    return found if found is not None else TeamSettings(owner=owner)


def set_defaults(request: HttpRequest, rule: str, grace_days: int) -> TeamSettings:
    """The owner's default rule and grace days for new invitations. Needs a recent
    confirmation. Raises :class:`BadGrant`."""
    proofs.require_recent_auth(request)
    owner = _owner(request)
    if rule not in Rule.values or not 0 <= grace_days <= MAX_GRACE_DAYS:
        raise BadGrant()
    context = Context.from_request(request)
    with transaction.atomic():
        row, _created = TeamSettings.objects.update_or_create(
            owner=owner, defaults={"default_rule": rule, "grace_days": grace_days}
        )
        record(owner, EventKind.TEAM_DEFAULTS, context, rule=rule, grace_days=grace_days)
    return row
