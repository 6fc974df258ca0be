"""What a team grant gives an app (issue 27): the ``keyfob_grants`` claim, through the
provider's own protocol (code flow with PKCE, the ID token verified against the JWKS,
userinfo, refresh), for the rule each grant carries; and removal, which revokes the
tokens that carried the account with a back-channel logout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client as Browser

from keyfob.accounts import proofs
from keyfob.accounts.models import Factor, User
from keyfob.core import clock
from keyfob.oidc import flows
from keyfob.oidc.models import Authorization, LogoutDelivery
from keyfob.teams import signals
from keyfob.teams.models import Grant, Rule
from tests.conftest import enrol, make_user, prove_for_client
from tests.oidc.helpers import REDIRECT, authorize, pkce, query, token
from tests.oidc.test_protocol import verified

SCOPE = "openid email profile grants"


@pytest.fixture
def app(db: None) -> tuple[Any, str]:
    return flows.create_client(
        "Control panel",
        [REDIRECT],
        first_party=True,
        backchannel_logout_uri="http://127.0.0.1:9/backchannel",
    )


@pytest.fixture
def owner(db: None) -> User:
    return make_user("owner@example.com", display_name="Acme Ltd")


def grant(owner: User, member: User, rule: str, **fields: Any) -> Grant:
    fields.setdefault("rights", ["technical", "dns"])
    return Grant.objects.create(owner=owner, member=member, rule=rule, **fields)


def sign_in(browser: Browser, user: User, *factors: str) -> None:
    """A new session for ``user`` with the password and ``factors`` (none: password only)."""
    from django.test import RequestFactory

    browser.force_login(user)
    if factors:
        prove_for_client(browser, user, *factors)
        return
    request = RequestFactory().get("/")
    request.session = browser.session
    request.user = user
    proofs.start(request, user, [proofs.PASSWORD])


def step_up(browser: Browser, user: User, factor: str) -> None:
    """The session of ``browser`` confirms it is its person with ``factor`` ("Confirm it
    is you"): one more proof on the same sign-in record."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.session = browser.session
    request.user = user
    proofs.add(request, [proofs.Made(Factor(factor))])


def tokens(browser: Browser, app: tuple[Any, str], scope: str = SCOPE) -> dict[str, Any]:
    """The code flow in the session of ``browser``: the token endpoint's answer, with
    ``claims`` the verified ID token's."""
    client, secret = app
    verifier, challenge = pkce()
    got = query(authorize(browser, client.client_id, challenge, scope=scope))
    answer = token(
        browser,
        client.client_id,
        secret,
        grant_type="authorization_code",
        code=got["code"],
        redirect_uri=REDIRECT,
        code_verifier=verifier,
    )
    assert answer.status_code == 200, answer.content
    body = dict(answer.json())
    body["claims"] = verified(browser, body["id_token"])
    return body


def refreshed(browser: Browser, app: tuple[Any, str], refresh_token: str) -> Any:
    client, secret = app
    return token(
        browser, client.client_id, secret, grant_type="refresh_token", refresh_token=refresh_token
    )


def userinfo(browser: Browser, access_token: str) -> Any:
    return browser.get("/oidc/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def expected(owner: User, rights: list[str] | None = None) -> dict[str, Any]:
    return {"account": str(owner.pk), "name": "Acme Ltd", "rights": rights or ["technical", "dns"]}


def test_a_key_rule_grant_waits_for_a_key(app: tuple[Any, str], owner: User) -> None:
    member = make_user("dev@example.com")
    enrol(member)
    grant(owner, member, Rule.KEY)
    browser = Browser()
    sign_in(browser, member, Factor.APP_CODE)
    code_only = tokens(browser, app)
    assert code_only["claims"]["keyfob_grants"] == []
    info = userinfo(browser, code_only["access_token"])
    assert info.status_code == 200 and info.json()["keyfob_grants"] == []
    # The same session proves a key: the next refresh carries the grant, without the owner.
    step_up(browser, member, Factor.SECURITY_KEY)
    again = refreshed(browser, app, code_only["refresh_token"])
    assert again.status_code == 200, again.content
    assert verified(browser, again.json()["id_token"])["keyfob_grants"] == [expected(owner)]
    # A new sign-in with a key: present in the ID token and in userinfo.
    fresh = Browser()
    sign_in(fresh, member, Factor.SECURITY_KEY)
    with_key = tokens(fresh, app)
    assert with_key["claims"]["keyfob_grants"] == [expected(owner)]
    assert userinfo(fresh, with_key["access_token"]).json()["keyfob_grants"] == [expected(owner)]


def test_a_2fa_rule_grant_counts_once_2fa_is_on(app: tuple[Any, str], owner: User) -> None:
    member = make_user("accountant@example.com")
    grant(owner, member, Rule.TWO_FACTOR, rights=["billing"])
    browser = Browser()
    sign_in(browser, member)  # no 2FA: the password only
    before = tokens(browser, app)
    assert before["claims"]["keyfob_grants"] == []
    assert before["claims"]["acr"] == "pwd"
    enrol(member)
    after = Browser()
    sign_in(after, member, Factor.APP_CODE)
    assert tokens(after, app)["claims"]["keyfob_grants"] == [expected(owner, ["billing"])]


def test_no_rule_and_grace_count_in_any_session(app: tuple[Any, str], owner: User) -> None:
    other = make_user("other@example.com", display_name="Other Co")
    member = make_user("helper@example.com")
    grant(owner, member, Rule.NONE, rights=["mail"])
    grant(other, member, Rule.KEY, grace_until=clock.now() + timedelta(days=3))
    browser = Browser()
    sign_in(browser, member)
    listed = tokens(browser, app)["claims"]["keyfob_grants"]
    assert listed == [
        expected(owner, ["mail"]),
        {"account": str(other.pk), "name": "Other Co", "rights": ["technical", "dns"]},
    ]


def test_the_claim_needs_its_scope_and_lists_only_known_rights(
    app: tuple[Any, str], owner: User, settings: Any
) -> None:
    member = make_user("dev@example.com")
    grant(owner, member, Rule.NONE, rights=["technical", "gone-right"])
    browser = Browser()
    sign_in(browser, member)
    without = tokens(browser, app, scope="openid email")
    assert "keyfob_grants" not in without["claims"]
    assert "keyfob_grants" not in userinfo(browser, without["access_token"]).json()
    assert Authorization.objects.get(token_family__isnull=False).acts_for == []
    assert tokens(browser, app)["claims"]["keyfob_grants"] == [expected(owner, ["technical"])]
    discovery = Browser().get("/oidc/.well-known/openid-configuration").json()
    assert "grants" in discovery["scopes_supported"]
    assert "keyfob_grants" in discovery["claims_supported"]


def test_a_grant_for_someone_else_is_not_listed(app: tuple[Any, str], owner: User) -> None:
    member = make_user("dev@example.com")
    stranger = make_user("stranger@example.com")
    grant(owner, member, Rule.NONE)
    browser = Browser()
    sign_in(browser, stranger)
    assert tokens(browser, app)["claims"]["keyfob_grants"] == []


def end(found: Grant) -> None:
    """What the teams flows do when the owner removes the member (or the member leaves)."""
    from django.db import transaction

    with transaction.atomic():
        found.ended_at = clock.now()
        found.save(update_fields=["ended_at"])
        signals.grant_ended.send(sender=Grant, grant=found)


def test_removal_revokes_the_tokens_that_carried_it(app: tuple[Any, str], owner: User) -> None:
    member = make_user("dev@example.com")
    other = make_user("other@example.com", display_name="Other Co")
    removed = grant(owner, member, Rule.NONE)
    grant(other, member, Rule.NONE)
    carried = Browser()
    sign_in(carried, member)
    body = tokens(carried, app)
    assert len(body["claims"]["keyfob_grants"]) == 2
    # Another app session of the member's whose tokens never listed the account stays.
    unrelated = Browser()
    sign_in(unrelated, member)
    untouched = tokens(unrelated, app, scope="openid email")
    end(removed)
    assert refreshed(carried, app, body["refresh_token"]).status_code == 400
    assert userinfo(carried, body["access_token"]).status_code == 401
    deliveries = list(LogoutDelivery.objects.values_list("subject", "sid"))
    ended = Authorization.objects.get(ended_at__isnull=False)
    assert deliveries == [(str(member.pk), ended.sid)]
    assert ended.acts_for == sorted([owner.pk, other.pk])
    still = refreshed(unrelated, app, untouched["refresh_token"])
    assert still.status_code == 200, still.content
    # The member signs in again: the other account still, the removed one no more.
    again = Browser()
    sign_in(again, member)
    assert tokens(again, app)["claims"]["keyfob_grants"] == [
        {"account": str(other.pk), "name": "Other Co", "rights": ["technical", "dns"]}
    ]


def test_a_changed_grant_takes_effect_at_the_next_sign_in(
    app: tuple[Any, str], owner: User
) -> None:
    member = make_user("dev@example.com")
    changed = grant(owner, member, Rule.NONE)
    browser = Browser()
    sign_in(browser, member)
    body = tokens(browser, app)
    assert body["claims"]["keyfob_grants"] == [expected(owner)]
    changed.rights = ["billing"]
    changed.save()
    signals.grant_changed.send(sender=Grant, grant=changed)
    assert refreshed(browser, app, body["refresh_token"]).status_code == 400
    again = Browser()
    sign_in(again, member)
    assert tokens(again, app)["claims"]["keyfob_grants"] == [expected(owner, ["billing"])]


def test_a_key_removed_takes_the_grant_away_at_refresh(app: tuple[Any, str], owner: User) -> None:
    """A refresh reads the sign-in's live proofs: a proof that died no longer counts."""
    member = make_user("dev@example.com")
    grant(owner, member, Rule.KEY)
    browser = Browser()
    sign_in(browser, member, Factor.SECURITY_KEY)
    body = tokens(browser, app)
    assert body["claims"]["keyfob_grants"] == [expected(owner)]
    found = Authorization.objects.get()
    assert Factor.SECURITY_KEY in found.factors
    from keyfob.accounts.models import Proof

    Proof.objects.filter(signin=found.signin, factor=Factor.SECURITY_KEY).update(
        revoked_at=clock.now()
    )
    again = refreshed(browser, app, body["refresh_token"])
    assert again.status_code == 200, again.content
    assert verified(browser, again.json()["id_token"])["keyfob_grants"] == []


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "See which customer accounts you may act for, and your rights there"),
        ("fr", "Voir pour quels comptes clients vous pouvez agir, et vos droits"),
    ],
)
def test_the_consent_page_names_the_scope(db: None, language: str, text: str) -> None:
    """A third-party app asking for ``grants``: the consent page says what it gives."""
    client, _secret = flows.create_client("Webmail", [REDIRECT])
    member = make_user("dev@example.com", language=language)
    browser = Browser()
    sign_in(browser, member, Factor.APP_CODE)
    _verifier, challenge = pkce()
    page = authorize(browser, client.client_id, challenge, scope=SCOPE)
    assert page.status_code == 200, page.status_code
    assert text in page.content.decode()
