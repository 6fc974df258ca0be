"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0, issue 25): a real HTTP
server on 127.0.0.1 plays the app's back-channel endpoint and checks each logout token the
way an app must (signature against Keyfob's JWKS, iss, aud, typ, events, sid, sub, no
nonce); every way a session ends reaches it, through the outbox-style retry."""

from __future__ import annotations

import io
import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import Client as Browser
from jwcrypto import jwk, jws, jwt
from oauth2_provider.models import get_refresh_token_model

from keyfob.accounts import sessions
from keyfob.accounts.models import Factor, User
from keyfob.core import clock
from keyfob.oidc import backchannel, flows, logout_token
from keyfob.oidc.app_settings import app_settings
from keyfob.oidc.models import Client, Consent, DeliveryState, LogoutDelivery
from tests.conftest import confirmed_now, confirmed_request, free_port, make_user, prove_for_client
from tests.oidc.helpers import REDIRECT, authorize, pkce, query, token
from tests.oidc.test_protocol import verified

ISSUER = "http://testserver/oidc"
AFTER_LOGOUT = "http://127.0.0.1:9/signed-out"


class AppEndpoint:
    """The app's back-channel logout endpoint: verifies each logout token as section 2.6
    says and answers 200, or 400 for a bad token; ``status`` makes it answer otherwise."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/backchannel-logout"
        self.keys: jwk.JWKSet | None = None
        self.audiences: set[str] = set()
        self.received: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self.status = 200
        self._server: ThreadingHTTPServer | None = None

    def verify(self, token: str) -> dict[str, Any]:
        assert self.keys is not None
        unverified = jws.JWS()
        unverified.deserialize(token)
        header = unverified.jose_header
        assert header["typ"] == "logout+jwt" and header["alg"] == "RS256" and header["kid"]
        checked = jwt.JWT(
            jwt=token,
            key=self.keys,
            check_claims={"iss": ISSUER, "iat": None, "exp": None, "jti": None},
        )
        claims: dict[str, Any] = json.loads(checked.claims)
        assert claims["aud"] in self.audiences
        assert claims["events"] == {logout_token.EVENT: {}}
        assert "nonce" not in claims
        assert claims.get("sid") or claims.get("sub")
        assert claims["exp"] - claims["iat"] <= 120
        return claims

    def start(self) -> AppEndpoint:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                status = endpoint.status
                if status == 200:
                    try:
                        assert self.headers["Content-Type"] == "application/x-www-form-urlencoded"
                        [sent] = parse_qs(body)["logout_token"]
                        endpoint.received.append(endpoint.verify(sent))
                    except Exception as exc:
                        endpoint.rejected.append(repr(exc))
                        status = 400
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def endpoint() -> Any:
    app = AppEndpoint().start()
    yield app
    app.stop()


def register(name: str, endpoint: AppEndpoint | None) -> tuple[Client, str]:
    client, secret = flows.create_client(
        name,
        [REDIRECT],
        first_party=True,
        backchannel_logout_uri=endpoint.url if endpoint else "",
        post_logout_redirect_uris=[AFTER_LOGOUT],
    )
    if endpoint is not None:
        endpoint.audiences.add(client.client_id)
    return client, secret


def app_signs_in(browser: Browser, client: Client, secret: str) -> dict[str, Any]:
    """The app's code flow in the session of ``browser``; returns the token answer with
    the ID token's verified claims under "claims"."""
    verifier, challenge = pkce()
    got = query(authorize(browser, client.client_id, challenge))
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
    body: dict[str, Any] = answer.json()
    body["claims"] = verified(browser, body["id_token"])
    return body


def signed_in(user: User) -> Browser:
    browser = Browser()
    browser.force_login(user)
    prove_for_client(browser, user, Factor.APP_CODE)
    return browser


def publish_keys(endpoint: AppEndpoint) -> None:
    """The app fetches Keyfob's JWKS (before it needs it, as apps cache it)."""
    endpoint.keys = jwk.JWKSet.from_json(Browser().get("/oidc/jwks/").content)


def delivered(endpoint: AppEndpoint) -> list[tuple[str, str, str]]:
    return sorted((c["aud"], c["sid"], c["sub"]) for c in endpoint.received)


# --- one sign-in, its apps, signing out -----------------------------------------------------


def test_signing_out_sends_each_app_one_logout_token_naming_the_session(
    db: None, endpoint: AppEndpoint
) -> None:
    panel, panel_secret = register("Control panel", endpoint)
    mail, mail_secret = register("Webmail", endpoint)
    quiet, quiet_secret = register("Status page", None)  # no back-channel URI
    alice = make_user("alice@example.com")
    browser = signed_in(alice)
    first = app_signs_in(browser, panel, panel_secret)
    again = app_signs_in(browser, panel, panel_secret)  # the same session, twice
    webmail = app_signs_in(browser, mail, mail_secret)
    app_signs_in(browser, quiet, quiet_secret)
    # One sign-in, one sid, in every app's ID token (and it is not the session key).
    sid = first["claims"]["sid"]
    assert sid == again["claims"]["sid"] == webmail["claims"]["sid"]
    assert browser.session.session_key not in sid and len(sid) == 32
    other = signed_in(alice)
    assert app_signs_in(other, panel, panel_secret)["claims"]["sid"] != sid

    assert browser.post("/logout/").status_code == 302
    rows = LogoutDelivery.objects.all()
    assert sorted(r.client.name for r in rows) == ["Control panel", "Webmail"]
    assert {r.sid for r in rows} == {sid} and {r.issuer for r in rows} == {ISSUER}

    publish_keys(endpoint)
    report = backchannel.deliver_pending()
    assert (report.sent, report.retrying, report.failed) == (2, 0, 0)
    assert endpoint.rejected == []
    assert delivered(endpoint) == sorted(
        [(panel.client_id, sid, str(alice.pk)), (mail.client_id, sid, str(alice.pk))]
    )
    assert len({c["jti"] for c in endpoint.received}) == 2
    assert all(r.state == DeliveryState.DELIVERED and r.delivered_at for r in rows.all())
    assert backchannel.deliver_pending().due == 0  # once
    assert len(endpoint.received) == 2
    # The other session goes on: nothing was owed for it.
    refreshed = token(
        other, panel.client_id, panel_secret, grant_type="refresh_token",
        refresh_token=app_signs_in(other, panel, panel_secret)["refresh_token"],
    )  # fmt: skip
    assert refreshed.status_code == 200


def test_the_logout_is_queued_in_the_transaction_that_revokes_the_tokens(
    db: None, endpoint: AppEndpoint
) -> None:
    panel, secret = register("Control panel", endpoint)
    alice = make_user("alice@example.com")
    app_signs_in(signed_in(alice), panel, secret)
    refresh = get_refresh_token_model().objects.get(user=alice)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        sessions.end_sessions(alice)
        refresh.refresh_from_db()
        assert refresh.revoked is not None
        assert LogoutDelivery.objects.count() == 1
        raise Undo()
    # Rolled back together: neither the revocation nor the logout stands alone.
    refresh.refresh_from_db()
    assert refresh.revoked is None
    assert not LogoutDelivery.objects.exists()


# --- every way a session ends -------------------------------------------------------------


def _sid_of(browser: Browser, client: Client, secret: str) -> str:
    return str(app_signs_in(browser, client, secret)["claims"]["sid"])


def test_sign_out_everywhere_else_and_one_session(db: None, endpoint: AppEndpoint) -> None:
    panel, secret = register("Control panel", endpoint)
    alice = make_user("alice@example.com")
    here, there, third = signed_in(alice), signed_in(alice), signed_in(alice)
    sids = [_sid_of(b, panel, secret) for b in (here, there, third)]
    from keyfob.accounts import proofs
    from keyfob.accounts.models import SignIn

    request = confirmed_request(alice)  # a fresh confirmation, in a session of its own
    third_record = SignIn.objects.get(session_digest=proofs.digest(third.session.session_key))
    sessions.sign_out_session(request, alice, third_record.pk)
    assert list(LogoutDelivery.objects.values_list("sid", flat=True)) == [sids[2]]
    sessions.sign_out_other_sessions(request, alice)
    assert sorted(LogoutDelivery.objects.values_list("sid", flat=True)) == sorted(sids)


def test_support_turning_2fa_off_reaches_the_apps(db: None, endpoint: AppEndpoint) -> None:
    from keyfob.support import flows as support
    from tests.support import test_flows as desk
    from tests.support.conftest import STAFF_CONTEXT, T0, enrolled

    panel, secret = register("Control panel", endpoint)
    with clock.frozen(T0):
        alice = enrolled("alice@example.com", phone="+33123456789")
        sam = enrolled("sam@support.example", is_staff=True)
        tess = enrolled("tess@support.example", is_staff=True)
        sid = _sid_of(signed_in(alice.user), panel, secret)
        req = desk.open_for(alice, sam)
        support.record_call(req.pk, sam.user, "confirmed", "Alice answered", STAFF_CONTEXT)
        support.disable(req.pk, tess.user, "lost phone", STAFF_CONTEXT)
    assert list(LogoutDelivery.objects.values_list("sid", "subject")) == [(sid, str(alice.user.pk))]


def test_a_password_reset_reaches_the_apps(db: None, endpoint: AppEndpoint) -> None:
    from tests.accounts import test_password_reset as reset

    panel, secret = register("Control panel", endpoint)
    alice = make_user("alice@example.com")
    sid = _sid_of(signed_in(alice), panel, secret)
    forgot = Browser()
    assert reset.ask(forgot)["Location"] == "/login/reset/code/"
    assert reset.finish(forgot, reset.mailed_code())["Location"] == "/login/"
    assert list(LogoutDelivery.objects.values_list("sid", flat=True)) == [sid]


def test_revoking_an_app_logs_it_out_but_revoking_a_client_does_not(
    db: None, endpoint: AppEndpoint
) -> None:
    panel, secret = flows.create_client(
        "Webmail", [REDIRECT], backchannel_logout_uri=endpoint.url
    )  # third party: a consent
    alice = make_user("alice@example.com")
    browser = signed_in(alice)
    Consent.objects.create(user=alice, client=panel, scopes="openid email profile")
    sid = _sid_of(browser, panel, secret)
    from django.test import RequestFactory

    request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.1")
    request.session = browser.session
    confirmed_now(request, alice)
    consent = Consent.objects.get(user=alice, client=panel)
    assert flows.revoke_app(request, alice, consent.pk) == "Webmail"
    assert list(LogoutDelivery.objects.values_list("sid", flat=True)) == [sid]
    # The session ending later owes nothing more: the app's part of it already ended.
    sessions.end_sessions(alice)
    assert LogoutDelivery.objects.count() == 1

    control, control_secret = register("Control panel", endpoint)
    _sid_of(signed_in(alice), control, control_secret)
    flows.revoke_client(control.client_id)
    sessions.end_sessions(alice)
    assert LogoutDelivery.objects.filter(client=control).count() == 0


def test_rp_initiated_logout_end_to_end_through_send_mail(db: None, endpoint: AppEndpoint) -> None:
    """The app sends the person to /oidc/logout/ with its ID token; the Keyfob session ends,
    and the next `keyfob send-mail` pass delivers a logout token to every app of it."""
    panel, panel_secret = register("Control panel", endpoint)
    mail, mail_secret = register("Webmail", endpoint)
    alice = make_user("alice@example.com")
    browser = signed_in(alice)
    body = app_signs_in(browser, panel, panel_secret)
    sid = body["claims"]["sid"]
    assert app_signs_in(browser, mail, mail_secret)["claims"]["sid"] == sid
    asked = {
        "id_token_hint": body["id_token"],
        "client_id": panel.client_id,
        "post_logout_redirect_uri": AFTER_LOGOUT,
        "state": "bye",
    }
    prompt = browser.get("/oidc/logout/", asked)
    assert prompt.status_code == 200  # Keyfob asks first (ALWAYS_PROMPT)
    done = browser.post("/oidc/logout/", {**asked, "allow": "on"})
    assert done.status_code == 302 and done["Location"] == AFTER_LOGOUT + "?state=bye"
    assert browser.get("/account/security/").status_code == 302  # signed out of Keyfob
    publish_keys(endpoint)
    out = io.StringIO()
    call_command("send-mail", stdout=out)
    assert "back-channel logouts: delivered 2, to retry 0, given up 0" in out.getvalue()
    assert endpoint.rejected == []
    assert delivered(endpoint) == sorted(
        [(panel.client_id, sid, str(alice.pk)), (mail.client_id, sid, str(alice.pk))]
    )


# --- retries ------------------------------------------------------------------------------


def _one_owed(endpoint: AppEndpoint) -> tuple[User, str]:
    panel, secret = register("Control panel", endpoint)
    alice = make_user("alice@example.com")
    sid = _sid_of(signed_in(alice), panel, secret)
    sessions.end_sessions(alice)
    return alice, sid


def test_an_app_that_is_down_gets_it_later(db: None, caplog: pytest.LogCaptureFixture) -> None:
    endpoint = AppEndpoint()  # nothing listens on its port yet
    _alice, sid = _one_owed(endpoint)
    publish_keys(endpoint)
    t0 = clock.time()
    with caplog.at_level(logging.INFO, logger="keyfob.oidc"), clock.frozen(t0):
        report = backchannel.deliver_pending()
        assert (report.sent, report.retrying) == (0, 1)
        row = LogoutDelivery.objects.get()
        assert row.state == DeliveryState.QUEUED and row.attempts == 1
        assert row.last_status == "ConnectionRefusedError"
        assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
        assert backchannel.deliver_pending().due == 0  # not due yet
    endpoint.start()
    try:
        endpoint.status = 500  # up, but failing
        with caplog.at_level(logging.INFO, logger="keyfob.oidc"), clock.frozen(t0 + 31):
            assert backchannel.deliver_pending().retrying == 1
        assert LogoutDelivery.objects.get().last_status == "HTTP 500"
        endpoint.status = 302  # a redirect is not followed
        with clock.frozen(t0 + 31 + 61):
            assert backchannel.deliver_pending().retrying == 1
        assert LogoutDelivery.objects.get().last_status == "HTTP 302"
        endpoint.status = 200
        with caplog.at_level(logging.INFO, logger="keyfob.oidc"), clock.frozen(t0 + 400):
            # Built at send time: fresh, and not expired for an app checking exp.
            assert backchannel.deliver_pending().sent == 1
        row = LogoutDelivery.objects.get()
        assert row.state == DeliveryState.DELIVERED and row.attempts == 4
        assert [c["sid"] for c in endpoint.received] == [sid]
        assert endpoint.received[0]["iat"] == int(t0 + 400)
    finally:
        endpoint.stop()
    # The log names the app and the outcome, never the token.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "'Control panel'" in logged and "delivered" in logged and "HTTP 500" in logged
    assert "eyJ" not in logged and sid not in logged


def test_given_up_after_the_last_attempt(
    db: None, endpoint: AppEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_settings, "logout_max_attempts", 2)
    _one_owed(endpoint)
    publish_keys(endpoint)
    endpoint.status = 503
    t0 = clock.time()
    with clock.frozen(t0):
        assert backchannel.deliver_pending().retrying == 1
    with clock.frozen(t0 + 3600):
        assert backchannel.deliver_pending().failed == 1
    row = LogoutDelivery.objects.get()
    assert row.state == DeliveryState.FAILED and row.last_status == "HTTP 503"
    with clock.frozen(t0 + 7200):
        assert backchannel.deliver_pending().due == 0


def test_prune_activity_deletes_what_is_done_past_the_retention(
    db: None, endpoint: AppEndpoint, settings: Any
) -> None:
    settings.KEYFOB_OUTBOX_RETENTION_DAYS = 7
    _one_owed(endpoint)
    publish_keys(endpoint)
    assert backchannel.deliver_pending().sent == 1
    _one_owed_again = LogoutDelivery.objects.create(
        client=Client.objects.exclude(client_id="keyfob-ssh").get(),
        subject="1",
        sid="x" * 32,
        issuer=ISSUER,
    )  # still queued: never pruned
    LogoutDelivery.objects.update(created_at=clock.now() - timedelta(days=8))
    out = io.StringIO()
    call_command("prune-activity", stdout=out)
    assert "deleted 1 back-channel logouts delivered or given up" in out.getvalue()
    assert list(LogoutDelivery.objects.all()) == [_one_owed_again]


# --- the operator's URI ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "http://apps.example.com/logout",  # plain http off this machine
        "https://apps.example.com/logout#frag",
        "ftp://apps.example.com/logout",
        "file:///etc/passwd",
        "https:///nohost",
    ],
)
def test_a_back_channel_uri_must_be_https_or_loopback(db: None, uri: str) -> None:
    with pytest.raises(flows.ClientError, match="--backchannel-logout-uri"):
        flows.create_client("Panel", [REDIRECT], backchannel_logout_uri=uri)
    assert not Client.objects.exclude(client_id="keyfob-ssh").exists()


def test_a_logout_token_names_a_subject_or_a_session() -> None:
    with pytest.raises(ValueError):
        logout_token.claims(issuer=ISSUER, audience="a", subject="", sid="", now=0)
    made = logout_token.claims(issuer=ISSUER, audience="a", subject="", sid="s", now=10)
    assert made["exp"] == 130 and "sub" not in made and "nonce" not in made


# --- two senders at once ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_senders_deliver_each_logout_once(endpoint: AppEndpoint) -> None:
    from tests.audit.test_concurrency import in_threads

    panel, _secret = register("Control panel", endpoint)
    publish_keys(endpoint)
    with transaction.atomic():
        LogoutDelivery.objects.bulk_create(
            LogoutDelivery(client=panel, subject=str(n), sid=f"{n:032x}", issuer=ISSUER)
            for n in range(20)
        )

    def sender(_i: int) -> int:
        sent = 0
        while True:
            report = backchannel.deliver_pending(limit=3)  # small passes: they interleave
            sent += report.sent
            if report.due == 0:
                return sent

    counts = in_threads(2, sender)
    assert sum(counts) == 20
    assert endpoint.rejected == []
    assert sorted(c["sub"] for c in endpoint.received) == sorted(str(n) for n in range(20))
    assert all(
        r.state == DeliveryState.DELIVERED and r.attempts == 1 for r in LogoutDelivery.objects.all()
    )
