"""A stale session (signed in longer ago than KEYFOB_REAUTH_SECONDS) changes nothing that
matters (issue 15, "a stale session takes the account over"): every view that changes a
security-relevant field sends it to "Confirm it is you" first, and turning 2FA on needs a
recent password but grants no re-authentication. Also: "Ask once" (issue 16), the clock-
drift oracle, the pending marker bound to the password, recovery codes bounded in time.

Each test here failed before the fix (seen: the setup page let a stale session enrol and
then change the e-mail; the profile saved a new phone with no confirmation and no notice;
a fast-clock code was accepted at its time; a pending sign-in outlived a password change;
fresh recovery codes were shown an hour later).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import get_resolver

from keyfob import otp
from keyfob.accounts.models import EmailChange, SignIn, User
from keyfob.accounts.proofs import digest
from keyfob.api import flows as api
from keyfob.api.models import SshLinkRequest, SshLogin
from keyfob.audit.events import Context
from keyfob.audit.models import Outbox
from keyfob.core import clock
from keyfob.oidc import flows as oidc
from keyfob.oidc.models import Consent
from keyfob.teams.models import Grant, Invitation, TeamSettings
from keyfob.twofactor.models import (
    Authenticator,
    RecoveryCode,
    SecurityKey,
    TrustedBrowser,
    WebAuthnChallenge,
)
from tests.conftest import (
    PASSWORD,
    Enrolled,
    confirmed_request,
    enrol,
    make_user,
    password_step,
    setup_page,
)
from tests.twofactor.keys import enrol_key

pytestmark = pytest.mark.django_db

STALE = settings.KEYFOB_REAUTH_SECONDS + 60


def state(user: User) -> dict[str, Any]:
    """Everything a sensitive change could touch, read fresh from the database."""
    user.refresh_from_db()
    return {
        "account": (user.email, user.password, user.phone, user.kind, user.notice_email),
        "authenticators": list(Authenticator.objects.filter(user=user).values()),
        "keys": list(SecurityKey.objects.filter(user=user).values()),
        "challenges": WebAuthnChallenge.objects.count(),
        "recovery": sorted(RecoveryCode.objects.filter(user=user).values_list("digest", flat=True)),
        "browsers": list(TrustedBrowser.objects.filter(user=user).values("pk", "revoked_at")),
        "email_changes": EmailChange.objects.filter(user=user).count(),
        "outbox": Outbox.objects.filter(user=user).count(),
        "ssh": (
            list(SshLogin.objects.filter(user=user).values()),
            list(SshLinkRequest.objects.filter(user=user).values()),
        ),
        "sessions": Session.objects.count(),
        "signins": list(SignIn.objects.filter(user=user).order_by("pk").values("pk", "ended_at")),
        # Issues 25 and 27: the apps allowed to sign in, the team and its invitations.
        "apps": list(Consent.objects.filter(user=user).values()),
        "team": (
            list(Grant.objects.filter(owner=user).values()),
            list(Invitation.objects.filter(owner=user).values("pk", "email", "rule")),
            list(TeamSettings.objects.filter(owner=user).values()),
        ),
    }


def refused(response: Any) -> bool:
    return response.status_code == 302 and response["Location"].startswith("/account/confirm/")


NEW = "another long passphrase 9"
NEW_PASSWORD = {"new_password1": NEW, "new_password2": NEW}
PROFILE = {"display_name": "Alice", "language": "", "time_zone": "UTC"}

# Every view of /account/ that changes a security-relevant field, with a POST that would
# change it. A server's request to link an SSH login is answered on the portal (issue 22).
WITHOUT_2FA = [
    ("/account/", {**PROFILE, "phone": "+33699999999", "kind": "individual"}),
    ("/account/", {**PROFILE, "phone": "+33123456789", "kind": "company"}),
    ("/account/password/", NEW_PASSWORD),
    ("/account/email/", {"email": "thief@example.net"}),
    ("/account/security/setup/", {"kind": "totp"}),
    ("/account/security/setup/phone/", {"phone": "+33699999999"}),
    ("/account/security/staff-key/", {"name": "Stolen", "credential": "{}", "invite": "x"}),
    ("/account/security/keys/options/", {}),
    ("/account/security/keys/add/", {"name": "Stolen", "credential": "{}"}),
]
# Signing other sessions out (one, or all): an intruder's way to keep the holder out.
SESSIONS = [
    ("/account/security/sessions/{session}/sign-out/", {}),
    ("/account/security/sessions/sign-out/", {}),
]
WITH_2FA = [
    *WITHOUT_2FA[:4],
    ("/account/security/disable/", {}),
    ("/account/security/recovery-codes/new/", {}),
    ("/account/security/browsers/revoke/", {}),
    ("/account/security/browsers/{browser}/revoke/", {}),
    ("/account/security/apps/{app}/rename/", {"name": "Stolen"}),
    ("/account/security/apps/{app}/remove/", {}),
    *WITHOUT_2FA[-2:],
    ("/account/security/keys/{key}/rename/", {"name": "Stolen"}),
    ("/account/security/keys/{key}/remove/", {}),
    ("/account/security/ssh/requests/{request}/", {"answer": "link"}),
    ("/account/security/ssh/requests/{request}/", {"answer": "refuse"}),
    # The second address for security notices (issue 24): adding or changing it, removing it.
    ("/account/notice-address/", {"email": "thief@example.net"}),
    ("/account/notice-address/remove/", {}),
    # An app's permission to sign in (issue 25); the team (issue 27): inviting someone,
    # changing or removing a member's grant, the defaults for new grants.
    ("/account/security/apps/{consent}/revoke/", {}),
    ("/account/team/invite/", {"email": "thief@example.net", "rights": "billing", "rule": "none"}),
    ("/account/team/members/{grant}/", {"rights": "billing", "rule": "none"}),
    ("/account/team/members/{grant}/remove/", {}),
    ("/account/team/defaults/", {"rule": "none", "grace_days": "90"}),
]
# The rest of /account/ changes nothing security-relevant, or only finishes what a fresh
# confirmation started: reading one's fresh recovery codes (bounded in time, below),
# typing back the e-mailed code of an address change, the Security page, the confirmation
# and the security key options it asks for (a challenge for the confirmation itself).
NOT_SENSITIVE = {"security", "recovery-codes", "recovery-codes-download", "email-confirm", "reauth"}
NOT_SENSITIVE |= {"reauth-key-options", "notice-email-confirm"}
# The team page; an invitation's answer (accepting proves the invited address by its mailed
# code; declining and withdrawing only stop an invitation); leaving an account one acts for.
NOT_SENSITIVE |= {"team", "team-accept", "team-decline", "team-withdraw", "team-leave"}


def account_views() -> set[str]:
    return {
        name
        for name in get_resolver().namespace_dict["account"][1].reverse_dict
        if isinstance(name, str)
    }


def test_the_walk_covers_every_account_view() -> None:
    """A new view under /account/ must join the walk below, or say why it need not."""
    walked = {"profile", "password", "email", "setup", "setup-phone", "disable", "regenerate"}
    walked |= {"revoke-all", "revoke-browser", "rename-authenticator", "remove-authenticator"}
    walked |= {"add-key", "add-key-options", "rename-key", "remove-key", "ssh-request"}
    walked |= {"sign-out-session", "sign-out-others", "notice-email", "notice-email-remove"}
    walked |= {"staff-key", "revoke-app", "team-invite", "team-grant", "team-remove"}
    walked |= {"team-defaults"}
    assert account_views() == walked | NOT_SENSITIVE


def test_a_stale_session_changes_nothing(client: Client, frozen_time: float) -> None:
    alice = make_user("alice@example.com", phone="+33123456789")
    assert password_step(client).status_code == 302
    other = Client()
    assert password_step(other).status_code == 302  # the holder, elsewhere
    session = SignIn.objects.get(session_digest=digest(other.session.session_key or "")).pk
    with clock.frozen(frozen_time + STALE):
        for path, data in [*WITHOUT_2FA, *SESSIONS]:
            before = state(alice)
            assert refused(client.post(path.format(session=session), data)), path
            assert state(alice) == before, path
        # Opening the setup page shows no key either, nor does the security key page.
        assert refused(client.get("/account/security/setup/"))
        assert refused(client.get("/account/security/keys/add/"))
        assert not Authenticator.objects.filter(user=alice).exists()


def test_a_stale_session_with_2fa_changes_nothing(client: Client, frozen_time: float) -> None:
    bob = enrol(make_user("bob@example.com", phone="+33123456789"))
    password_step(client, "bob@example.com")
    response = client.post("/login/code/", {"code": bob.code(), "trust": "on"})
    assert response.status_code == 302
    browser = TrustedBrowser.objects.get(user=bob.user).pk
    # A second app, so that removing one is not turning 2FA off.
    app = enrol(bob.user, name="Tablet").user.authenticators.get(name="Tablet").pk
    key = enrol_key(bob.user, name="Blue key").key.pk
    api.request_link("bob@example.com", "bob", "web1", Context())
    request = SshLinkRequest.objects.get().pk
    here = digest(client.session.session_key or "")
    session = SignIn.objects.filter(user=bob.user).exclude(session_digest=here).first().pk  # type: ignore[union-attr]
    client_app, _secret = oidc.create_client("Panel", ["https://panel.example/cb"])
    consent = Consent.objects.create(user=bob.user, client=client_app, scopes="openid").pk
    member = make_user("member@example.com")
    grant = Grant.objects.create(owner=bob.user, member=member, rights=["technical"]).pk
    with clock.frozen(frozen_time + STALE):
        for path, data in [*WITH_2FA, *SESSIONS]:
            before = state(bob.user)
            url = path.format(
                browser=browser,
                app=app,
                key=key,
                request=request,
                session=session,
                consent=consent,
                grant=grant,
            )
            assert refused(client.post(url, data)), path
            assert state(bob.user) == before, path


def test_setup_needs_a_recent_password_and_grants_no_reauthentication(
    client: Client, frozen_time: float
) -> None:
    """The attack: a copied stale session enrols its own authenticator, then, the setup's
    code having marked the session fresh, changes the e-mail address."""
    alice = make_user("alice@example.com", phone="+33123456789")
    password_step(client)
    with clock.frozen(frozen_time + STALE):
        response = client.get("/account/security/setup/")
        assert response["Location"] == "/account/confirm/?next=%2Faccount%2Fsecurity%2Fsetup%2F"
        # The owner (who has the password) confirms; enrolling then works.
        response = client.post(
            "/account/confirm/", {"password": PASSWORD, "next": "/account/security/setup/"}
        )
        assert response["Location"] == "/account/security/setup/"
        html = setup_page(client)
        secret = otp.b32decode_secret(re.search(r'id="secret">([A-Z2-7 ]+)<', html).group(1))  # type: ignore[union-attr]
        response = client.post("/account/security/setup/", {"code": otp.totp(secret, clock.time())})
        assert response["Location"] == "/account/security/recovery-codes/"
        # The setup code proved the new authenticator, not the person: the next change
        # asks for the password and a code.
        assert refused(client.post("/account/email/", {"email": "thief@example.net"}))
    assert not EmailChange.objects.filter(user=alice).exists()


def test_fresh_recovery_codes_are_readable_for_ten_minutes_only(
    client: Client, user: User, frozen_time: float
) -> None:
    password_step(client)
    html = setup_page(client)
    secret = otp.b32decode_secret(re.search(r'id="secret">([A-Z2-7 ]+)<', html).group(1))  # type: ignore[union-attr]
    response = client.post("/account/security/setup/", {"code": otp.totp(secret, clock.time())})
    assert response["Location"] == "/account/security/recovery-codes/"
    with clock.frozen(frozen_time + 9 * 60):
        assert client.get("/account/security/recovery-codes/").status_code == 200
    with clock.frozen(frozen_time + 11 * 60):
        assert client.get("/account/security/recovery-codes/download/").status_code == 404
        assert client.get("/account/security/recovery-codes/")["Location"] == "/account/security/"


def test_password_and_code_once_are_enough_for_a_new_password(
    client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    """Ask once: after "Confirm it is you" the password page asks neither the old password
    (an unthrottled password check, before) nor a code."""
    password_step(client)
    client.post("/login/code/", {"code": user_with_totp.code()})
    page = client.get("/account/password/").content.decode()
    assert 'name="old_password"' not in page and 'name="code"' not in page
    assert client.post("/account/password/", NEW_PASSWORD)["Location"] == "/account/"
    user_with_totp.user.refresh_from_db()
    assert user_with_totp.user.check_password(NEW_PASSWORD["new_password1"])


def test_a_pending_sign_in_ends_with_a_password_change(
    pending_client: Client, user_with_totp: Enrolled
) -> None:
    """Half-signed-in (password typed), then the owner changes the password elsewhere:
    the code step no longer opens the account."""
    user = User.objects.get(pk=user_with_totp.user.pk)
    user.set_password("the owner's new long password")
    user.save()
    response = pending_client.post("/login/code/", {"code": user_with_totp.code()})
    assert response["Location"] == "/login/"
    assert client_is_anonymous(pending_client)


def client_is_anonymous(client: Client) -> bool:
    return "_auth_user_id" not in client.session


def test_a_code_for_a_later_step_is_spent_by_the_drift_answer(
    pending_client: Client, user_with_totp: Enrolled, frozen_time: float
) -> None:
    """The answer "your phone is 3 minutes fast" must not tell a guesser a code to type
    later."""
    later = user_with_totp.code(frozen_time + 180)
    response = pending_client.post("/login/code/", {"code": later})
    text = response.content.decode()
    assert "3 minutes fast" in text and "work again in about 3 minutes" in text
    with clock.frozen(frozen_time + 180):
        password_step(pending_client)
        response = pending_client.post("/login/code/", {"code": later})
        assert response.status_code == 200 and "already been used" in response.content.decode()
        assert client_is_anonymous(pending_client)
        # The next step's code works.
    with clock.frozen(frozen_time + 210):
        response = pending_client.post("/login/code/", {"code": user_with_totp.code()})
        assert response.status_code == 302 and not client_is_anonymous(pending_client)


def test_the_flows_refuse_a_stale_session_themselves(frozen_time: float) -> None:
    """Not only the pages' guard (issue 21): each flow of a sensitive change asks the
    session's proofs itself."""
    from keyfob.accounts import sessions
    from keyfob.accounts.flows import ReauthRequired
    from keyfob.audit.events import Context
    from keyfob.twofactor import flows

    bob = enrol(make_user("bob@example.com"))
    app = enrol(bob.user, name="Tablet").user.authenticators.get(name="Tablet").pk
    key = enrol_key(bob.user, name="Blue key").key.pk
    flows.trust_browser(bob.user, Context())
    request = confirmed_request(bob.user)
    pending = flows.start_setup(bob.user, name="Phone 3")
    context = Context()
    with clock.frozen(frozen_time + STALE):
        code = otp.totp(pending.secret(), clock.time())
        calls = {
            "confirm_setup": lambda: flows.confirm_setup(request, bob.user, code, context),
            "disable": lambda: flows.disable(request, bob.user, context),
            "regenerate": lambda: flows.regenerate_recovery_codes(request, bob.user, context),
            "revoke": lambda: flows.revoke_trusted_browsers(request, bob.user, context),
            "remove app": lambda: flows.remove(request, bob.user, flows.Family.APP, app, context),
            "remove key": lambda: flows.remove(request, bob.user, flows.Family.KEY, key, context),
            "sign out": lambda: sessions.sign_out_other_sessions(request, bob.user),
        }
        for name, call in calls.items():
            before = state(bob.user)
            with pytest.raises(ReauthRequired):
                call()
            assert state(bob.user) == before, name
    # Fresh, the same request may (the refusals above were the staleness, nothing else).
    assert flows.regenerate_recovery_codes(request, bob.user, context)
