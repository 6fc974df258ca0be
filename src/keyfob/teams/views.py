"""Account → Team: the owner's members and invitations, the accounts the signed-in person
acts for, and the invitations waiting for their address. Views stay thin: the forms
validate, :mod:`keyfob.teams.flows` does the work."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from keyfob.accounts import proofs
from keyfob.accounts.decorators import reauth_required
from keyfob.accounts.models import SignIn, User
from keyfob.teams import flows, rules
from keyfob.teams.app_settings import app_settings
from keyfob.teams.errors import TeamError
from keyfob.teams.forms import (
    DefaultsForm,
    GrantForm,
    InvitationCodeForm,
    InviteForm,
    login_label,
    login_value,
)
from keyfob.teams.messages import FIELD_REFUSALS, refusal
from keyfob.teams.models import Grant, Invitation, Rule
from keyfob.twofactor.flows import has_2fa
from keyfob.twofactor.models import SecurityKey


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@dataclass(frozen=True)
class Member:
    """A member as their owner sees them: compliance, never authenticators or codes."""

    grant: Grant
    has_2fa: bool
    has_key: bool
    last_seen: datetime | None
    logins: list[str]
    in_grace: bool


@dataclass(frozen=True)
class Acting:
    """An account the signed-in person acts for, as this session stands."""

    grant: Grant
    counts: bool
    meets: bool
    in_grace: bool
    waits_for: str
    later: str
    comply_url: str
    comply_text: str
    logins: list[str]


def _members(owner: User) -> list[Member]:
    grants = flows.grants_given(owner)
    ids = [g.member_id for g in grants]
    keys = set(SecurityKey.objects.filter(user_id__in=ids).values_list("user_id", flat=True))
    seen = dict(
        SignIn.objects.filter(user_id__in=ids)
        .values("user_id")
        .annotate(last=Max("last_seen_at"))
        .values_list("user_id", "last")
    )
    return [
        Member(
            grant=g,
            has_2fa=has_2fa(g.member),
            has_key=g.member_id in keys,
            last_seen=seen.get(g.member_id),
            logins=[login_label(login, server) for login, server in g.logins],
            in_grace=rules.in_grace(g),
        )
        for g in grants
    ]


def _team_url() -> str:
    return reverse("account:team")


def _comply(user: User, rule: str) -> tuple[str, str, str, str]:
    """What a grant whose rule this session does not meet waits for (now, and once its
    grace period is over), and the way to comply (address, words)."""
    back = _team_url()
    if rule == Rule.KEY:
        waits = _("This grant waits for a security key.")
        later = _("After the grace period it needs a sign-in with a security key.")
        if not SecurityKey.objects.filter(user=user).exists():
            return waits, later, reverse("account:add-key"), _("Add a security key")
        query = urlencode({"need": "key", "next": back})
        return (
            waits,
            later,
            f"{reverse('account:reauth')}?{query}",
            _("Confirm it is you with your security key"),
        )
    waits = _("This grant waits for two-factor authentication.")
    later = _("After the grace period it needs a sign-in with two-factor authentication.")
    if not has_2fa(user):
        return waits, later, reverse("account:setup"), _("Turn on two-factor authentication")
    return (
        waits,
        later,
        f"{reverse('account:reauth')}?{urlencode({'next': back})}",
        _("Confirm it is you with your second factor"),
    )


def _acting(request: HttpRequest, user: User) -> list[Acting]:
    factors = {p.factor for p in proofs.live_proofs(request)}
    counting, waiting = rules.split(user, factors)
    found = []
    for grant in sorted([*counting, *waiting], key=lambda g: (g.created_at, g.pk)):
        meets = rules.met(grant.rule, factors)
        waits_for, later, url, text = ("", "", "", "") if meets else _comply(user, grant.rule)
        found.append(
            Acting(
                grant=grant,
                counts=grant in counting,
                meets=meets,
                in_grace=rules.in_grace(grant),
                waits_for=waits_for,
                later=later,
                comply_url=url,
                comply_text=text,
                logins=[login_label(login, server) for login, server in grant.logins],
            )
        )
    return found


@login_required
@require_http_methods(["GET"])
def team_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    defaults = flows.defaults_of(user)
    context = {
        "members": _members(user),
        "pending": flows.pending_invitations(user),
        "defaults_form": DefaultsForm(
            initial={"rule": defaults.default_rule, "grace_days": defaults.grace_days}
        ),
        "acting": _acting(request, user),
        "invitations": [
            (inv, InvitationCodeForm(prefix=f"i{inv.pk}")) for inv in flows.invitations_for(user)
        ],
        "rules": dict(Rule.choices),
    }
    return render(request, "teams/team.html", context)


@reauth_required
@require_http_methods(["GET", "POST"])
def invite_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    defaults = flows.defaults_of(user)
    form = InviteForm(
        request.POST if request.method == "POST" else None,
        owner=user,
        initial={
            "rule": defaults.default_rule,
            "grace_days": defaults.grace_days,
            "rights": [],
        },
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            flows.invite(
                request,
                data["email"],
                data["rights"],
                data["logins"],
                data["rule"],
                data["grace_days"],
            )
        except TeamError as exc:
            form.add_error(None, refusal(exc))
        else:
            messages.success(
                request,
                _("The invitation is sent to %(email)s. It works for %(days)d days.")
                % {"email": data["email"], "days": flows.INVITE_DAYS},
            )
            return redirect("account:team")
    return render(request, "teams/invite.html", {"form": form})


@reauth_required
@require_http_methods(["GET", "POST"])
def grant_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    grant = next((g for g in flows.grants_given(user) if g.pk == pk), None)
    if grant is None:
        messages.error(request, refusal(flows.NotFound()))
        return redirect("account:team")
    initial = {
        "rights": grant.rights,
        "logins": [login_value(login, server) for login, server in grant.logins],
        "rule": grant.rule,
    }
    form = GrantForm(
        request.POST if request.method == "POST" else None, owner=user, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            flows.change_grant(request, grant.pk, data["rights"], data["logins"], data["rule"])
        except TeamError as exc:
            form.add_error(None, refusal(exc))
        else:
            messages.success(request, _("The member's grant is changed; both of you are told."))
            return redirect("account:team")
    return render(request, "teams/grant.html", {"form": form, "grant": grant})


def _done(request: HttpRequest, action: object, success: str) -> HttpResponse:
    try:
        action()  # type: ignore[operator]
    except TeamError as exc:
        messages.error(request, refusal(exc))
    else:
        messages.success(request, success)
    return redirect("account:team")


# Removing a member and lowering the defaults need a recent confirmation, like signing
# other sessions out: a stale session could otherwise lock the team out or weaken its rule.
@reauth_required
@require_POST
def remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _done(
        request,
        lambda: flows.remove(request, pk),
        _("The member is removed: the grant gives nothing from now on."),
    )


@login_required
@require_POST
def leave_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _done(
        request,
        lambda: flows.leave(request, pk),
        _("You no longer act for that account."),
    )


@login_required
@require_POST
def withdraw_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _done(
        request,
        lambda: flows.withdraw(request, pk),
        _("The invitation is withdrawn: its code no longer works."),
    )


@login_required
@require_POST
def decline_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _done(
        request,
        lambda: flows.decline(request, pk),
        _("The invitation is declined; its sender is told."),
    )


@reauth_required
@require_POST
def defaults_view(request: HttpRequest) -> HttpResponse:
    form = DefaultsForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("account:team")
    data = form.cleaned_data
    return _done(
        request,
        lambda: flows.set_defaults(request, data["rule"], data["grace_days"]),
        _("The defaults for new members are saved."),
    )


@login_required
@require_http_methods(["GET", "POST"])
def accept_view(request: HttpRequest, pk: int) -> HttpResponse:
    """An invitation waiting for the signed-in person's address, and its code typed (a
    form field: the code is never in an address, which servers log)."""
    user = _user(request)
    invitation: Invitation | None = next(
        (inv for inv in flows.invitations_for(user) if inv.pk == pk), None
    )
    if invitation is None:
        messages.error(request, refusal(flows.InvitationLost()))
        return redirect("account:team")
    form = InvitationCodeForm(
        request.POST if request.method == "POST" else None, prefix=f"i{invitation.pk}"
    )
    if request.method == "POST" and form.is_valid():
        try:
            flows.accept(request, invitation.pk, form.cleaned_data["code"])
        except TeamError as exc:
            if exc.code in FIELD_REFUSALS:
                form.add_error("code", refusal(exc))
            else:
                messages.error(request, refusal(exc))
                return redirect("account:team")
        else:
            messages.success(
                request,
                _("You now act for the account of %(owner)s.")
                % {"owner": flows.who(invitation.owner)},
            )
            return redirect("account:team")
    context = {
        "invitation": invitation,
        "form": form,
        "rules": dict(Rule.choices),
        "logins": [login_label(login, server) for login, server in invitation.logins],
        "rights_known": app_settings.rights,
    }
    return render(request, "teams/accept.html", context)
