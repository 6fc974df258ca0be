"""The JSON API's views: HTTP in and out only; :mod:`keyfob.api.flows` does the work.

Every answer is JSON. A refusal is ``{"error": {"code", "message"}}`` with its status:
400 malformed, 401 no valid token, 403 token not allowed, 404 not found, 405 method,
413 body too large, 503 database unavailable. Nothing here answers 500 on purpose: every
field is checked before it reaches a query.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_backends import get_oauthlib_core

from keyfob.accounts import proofs
from keyfob.accounts.addresses import normal_email
from keyfob.accounts.decorators import reauth_required
from keyfob.accounts.models import User
from keyfob.api import flows, sshca
from keyfob.api.app_settings import app_settings
from keyfob.api.models import ServerToken, SshLinkRequest, SshLogin
from keyfob.audit.events import Context, client_address
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.teams import rules
from keyfob.twofactor.flows import has_2fa

logger = logging.getLogger(__name__)
OPENAPI = Path(__file__).resolve().parent / "openapi.json"

View = Callable[..., HttpResponse]


# Every refusal the API answers, by reason: the error code clients act on, the HTTP status,
# and the message for people (a template filled from the fields given with the reason).
# A refusal from the flows (ApiError) is found by its code and keeps the flows' message.
ERRORS: dict[str, tuple[str, int, str]] = {
    "bad_length": ("malformed", 400, "bad Content-Length"),
    "not_an_object": ("malformed", 400, "the body must be a JSON object"),
    "too_large": ("too_large", 413, "the body is limited to {limit} bytes"),
    "not_a_string": ("invalid_field", 400, "{name!r} must be a string"),
    "not_an_address": ("invalid_field", 400, "'client_address' must be an IP address"),
    "invalid_code": ("invalid_code", 400, "'code' is 1 to 64 printable ASCII characters"),
    "invalid_login": (
        "invalid_login",
        400,
        "a login is up to 32 letters, digits, '.', '_', '-'",
    ),
    "invalid_server": ("invalid_server", 400, "a server name is letters, digits, '.', '_', '-'"),
    "server_required": (
        "server_required",
        400,
        "name the server: a link holds only for the server token of that name",
    ),
    "invalid_email": ("invalid_email", 400, "'email' must be an e-mail address"),
    "not_found": ("not_found", 404, "no such login link"),
    "login_taken": ("login_taken", 409, "this login is linked to another account"),
    "unauthorized": ("unauthorized", 401, "send a valid server token: Authorization: Bearer …"),
    "forbidden": ("forbidden", 403, "this server token cannot manage login links"),
    "other_server": (
        "other_server",
        403,
        "this server token manages the login links of server {server!r} only",
    ),
    "method_not_allowed": ("method_not_allowed", 405, "use {methods} on this URL"),
    "unavailable": ("unavailable", 503, "the database is not available, try again"),
    "krl": ("krl_unavailable", 503, "the revocation list cannot be built now, try again"),
    "sign_in_required": (
        "unauthorized",
        401,
        "sign in with keyfob-ssh login: send the access token it got, Authorization: Bearer …",
    ),
    "not_for_certificates": (
        "forbidden",
        403,
        "this token was not given for SSH certificates (keyfob-ssh login, scope ssh)",
    ),
    "approval_too_old": (
        "approval_too_old",
        403,
        "this approval is older than {minutes} minutes: run keyfob-ssh login again",
    ),
}


class BadRequest(Exception):
    """A refusal: ``reason`` is a key of :data:`ERRORS` (or an ApiError's code), ``params``
    fill its message; ``message`` replaces it (an ApiError's own)."""

    def __init__(self, reason: str, *, message: str | None = None, **params: object) -> None:
        self.code, self.status, template = ERRORS.get(reason, (reason, 400, ""))
        self.message = template.format(**params) if message is None else message
        super().__init__(self.message)


def _json(data: dict[str, Any], status: int = 200) -> JsonResponse:
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    return response


def error(reason: str, **params: object) -> JsonResponse:
    """The JSON answer for a refusal of :data:`ERRORS`."""
    code, status, template = ERRORS[reason]
    return _json({"error": {"code": code, "message": template.format(**params)}}, status=status)


def _refusal(exc: BadRequest) -> JsonResponse:
    return _json({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


def _unauthorized() -> JsonResponse:
    response = error("unauthorized")
    response["WWW-Authenticate"] = 'Bearer realm="keyfob"'
    return response


def _method_refused(request: HttpRequest, methods: tuple[str, ...]) -> JsonResponse | None:
    if request.method in methods:
        return None
    response = error("method_not_allowed", methods=" or ".join(methods))
    response["Allow"] = ", ".join(methods)
    return response


def _answer(request: HttpRequest, view: Callable[[], HttpResponse]) -> HttpResponse:
    """``view()``, with a :class:`BadRequest` or a database failure answered as JSON."""
    try:
        return view()
    except BadRequest as exc:
        return _refusal(exc)
    except DatabaseError:
        logger.exception("database error in %s", request.path)
        return error("unavailable")


def endpoint(methods: tuple[str, ...], *, manage: bool = False) -> Callable[[View], View]:
    """Token-authenticated JSON endpoint: method, then token, then the view.

    CSRF does not apply: the credential is a header a browser never sends by itself.
    """

    def wrap(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            def authenticated() -> HttpResponse:
                token = flows.authenticate(request.headers.get("Authorization", ""))
                if token is None:
                    return _unauthorized()
                if manage and not token.can_manage_links:
                    return error("forbidden")
                return view(request, token, **kwargs)

            return _method_refused(request, methods) or _answer(request, authenticated)

        return wrapper

    return wrap


def _body(request: HttpRequest) -> dict[str, Any]:
    """The request's JSON object; raises :class:`BadRequest` (400 or 413)."""
    limit = app_settings.max_body
    raw_length = request.META.get("CONTENT_LENGTH") or "0"
    if not raw_length.isascii() or not raw_length.isdigit():
        raise BadRequest("bad_length")
    if int(raw_length) > limit:
        raise BadRequest("too_large", limit=limit)
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError):
        raise BadRequest("not_an_object") from None
    if not isinstance(data, dict):
        raise BadRequest("not_an_object")
    return data


def _string(data: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRequest("not_a_string", name=name)
    return value


def _login(value: str) -> str:
    if not flows.valid_login(value):
        raise BadRequest("invalid_login")
    return value


def _server(value: str) -> str:
    if value and not flows.valid_server(value):
        raise BadRequest("invalid_server")
    return value


def _email(value: str) -> str:
    try:
        if len(value) > 254 or not value.isprintable():
            raise ValidationError("bad")
        validate_email(value)
    except ValidationError:
        raise BadRequest("invalid_email") from None
    return normal_email(value)


def _link_json(row: SshLogin) -> dict[str, Any]:
    return {
        "login": row.login,
        "server": row.server or None,
        "email": row.user.email,
        "created_at": row.created_at.isoformat(),
    }


def _api_context(request: HttpRequest, token: ServerToken) -> Context:
    return Context(
        channel=Channel.API, address=client_address(request), user_agent=f"api:{token.name}"
    )


# -- views ---------------------------------------------------------------------------------


@csrf_exempt
def openapi(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.method != "GET":
        response = error("method_not_allowed", methods="GET")
        response["Allow"] = "GET"
        return response
    response = HttpResponse(OPENAPI.read_bytes(), content_type="application/json")
    response["Cache-Control"] = "public, max-age=3600"
    return response


def _verify_fields(request: HttpRequest) -> tuple[str, str, str | None]:
    """The login, code and client address (normalized; None if not sent) of a verify
    request."""
    data = _body(request)
    login = _login(_string(data, "login"))
    code = _string(data, "code")
    if not 0 < len(code) <= flows.MAX_CODE or not code.isascii() or not code.isprintable():
        raise BadRequest("invalid_code")
    client = None
    if data.get("client_address") is not None:
        try:
            client = str(ipaddress.ip_address(_string(data, "client_address")))
        except ValueError:
            raise BadRequest("not_an_address") from None
    return login, code, client


@csrf_exempt
def ssh_verify(request: HttpRequest) -> HttpResponse:
    """Token-authenticated like the others, but the body is read first, so that the token
    and the account behind the login are found in one query: this is the request every
    SSH login waits for."""

    def verified() -> HttpResponse:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        try:
            login, code, client = _verify_fields(request)
        except BadRequest:
            # Without a valid token the answer is 401, whatever the body holds.
            if flows.authenticate(header) is None:
                return _unauthorized()
            raise
        found = flows.authenticate_for(header, login)
        if found is None:
            return _unauthorized()
        token, account = found
        # The address Keyfob saw is the server's; the SSH client's is only what the server
        # says (it could say anything), so it is kept apart, as reported.
        context = flows.ssh_context(token.name, client_address(request), client)
        return _json(flows.verify(account, login, token.name, code, context).as_json())

    return _method_refused(request, ("POST",)) or _answer(request, verified)


@endpoint(("POST",))
def ssh_check(request: HttpRequest, token: ServerToken) -> HttpResponse:
    data = _body(request)
    login = _login(_string(data, "login"))
    return _json(flows.check(token.name, login).as_json())


@endpoint(("POST",))
def ssh_principals(request: HttpRequest, token: ServerToken) -> HttpResponse:
    """The certificate principals that may log in as a Unix login on the token's server
    (sshd's AuthorizedPrincipalsCommand asks, through ``keyfob-ssh principals``)."""
    data = _body(request)
    login = _login(_string(data, "login"))
    return _json({"principals": sshca.principals_for(token.name, login)})


# The device-grant client of ``keyfob-ssh login`` (oidc's data migration registers it) and
# how long after the approval its token may fetch the certificate (once).
SSH_LOGIN_CLIENT = "keyfob-ssh"
CERTIFICATE_APPROVAL_MINUTES = 10


def _no_factors(token: Any) -> set[str]:
    return set()


# The factors of the live proofs of the session that approved an access token (the
# certificate's strength principals, issue 27). api and oidc are siblings that do not
# import each other: the site (keyfob.site.apps) sets this to oidc's ``token_factors``.
# Unset, a certificate names the account only, and no grant with a rule opens with it.
TOKEN_FACTORS: Callable[[Any], set[str]] = _no_factors


@csrf_exempt
def ssh_certificates(request: HttpRequest) -> HttpResponse:
    """POST ``{"public_key": "ssh-ed25519 AAAA…"}`` with the access token that ``keyfob-ssh
    login`` got through the device grant: the certificate for it. The token is used up
    (one certificate per approval) in the transaction that signs."""

    def issue() -> HttpResponse:
        valid, oauth = get_oauthlib_core().verify_request(request, scopes=["ssh"])
        if not valid:
            response = error("sign_in_required")
            response["WWW-Authenticate"] = 'Bearer realm="keyfob", scope="ssh"'
            return response
        token = oauth.access_token
        if token.application.client_id != SSH_LOGIN_CLIENT:
            return error("not_for_certificates")
        if token.created < clock.now() - timedelta(minutes=CERTIFICATE_APPROVAL_MINUTES):
            return error("approval_too_old", minutes=CERTIFICATE_APPROVAL_MINUTES)
        public_key = _string(_body(request), "public_key")
        # Read before the token is spent: the approval is found through it.
        factors = TOKEN_FACTORS(token)
        address = client_address(request)
        context = Context(channel=Channel.API, address=address, user_agent="keyfob-ssh login")
        with transaction.atomic():
            # Consume-once: of two requests with one token, one deletes it and signs.
            if not get_access_token_model().objects.filter(pk=token.pk).delete()[0]:
                return error("sign_in_required")
            try:
                issued = sshca.issue_certificate(
                    token.user, public_key, context, factors=factors, requested_from=address
                )
            except sshca.CertificateRefused as exc:
                transaction.set_rollback(True)
                raise BadRequest(exc.code, message=exc.message) from None
        logins = [
            f"{row.login}@{row.server}" if row.server else row.login
            for row in flows.logins_of(token.user)
        ]
        # A member's granted logins that this approval's strength opens (issue 27).
        logins += [
            f"{login}@{server}"
            for login, server, _grant in sshca.granted_logins(token.user, factors)
        ]
        return _json(
            {
                "certificate": issued.certificate,
                "valid_before": issued.row.valid_before.isoformat(),
                "logins": logins,
            }
        )

    return _method_refused(request, ("POST",)) or _answer(request, issue)


@endpoint(("GET",))
def ssh_ca(request: HttpRequest, token: ServerToken) -> HttpResponse:
    """The CA public keys a server trusts (its TrustedUserCAKeys file)."""
    return _json({"keys": [row.public_key for row in sshca.published_keys()]})


@endpoint(("GET",))
def ssh_krl(request: HttpRequest, token: ServerToken) -> HttpResponse:
    """The revocation list (OpenSSH KRL, binary) for sshd's RevokedKeys."""
    try:
        data = sshca.revocation_list()
    except sshca.KrlError:
        logger.exception("cannot build the KRL")
        raise BadRequest("krl") from None
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Cache-Control"] = "no-store"
    return response


def _own_server(token: ServerToken, value: str) -> str:
    """The server a manage request is about: the token's own, whether named or not (issue
    22: a manage token acts only on its own server's links)."""
    server = _server(value)
    if server and server != token.name:
        raise BadRequest("other_server", server=token.name)
    return token.name


@endpoint(("GET", "POST"), manage=True)
def ssh_logins(request: HttpRequest, token: ServerToken) -> HttpResponse:
    """GET: the links in force on the token's server. POST: ask an account to link a login
    on the token's server; its owner confirms on their Security page (202 whether or not
    an account has the address; 200 when that account already holds the login there)."""
    if request.method == "GET":
        server = _own_server(token, request.GET.get("server", ""))
        rows = SshLogin.objects.select_related("user").filter(server=server)
        if "login" in request.GET:
            rows = rows.filter(login=_login(request.GET["login"]))
        if "email" in request.GET:
            rows = rows.filter(user__email=_email(request.GET["email"]))
        return _json({"logins": [_link_json(row) for row in rows[:1000]]})
    data = _body(request)
    email = _email(_string(data, "email"))
    login = _login(_string(data, "login"))
    server = _own_server(token, _string(data, "server", required=False))
    try:
        state, row = flows.request_link(email, login, server, _api_context(request, token))
    except flows.ApiError as exc:
        raise BadRequest(exc.code, message=exc.message) from None
    if row is not None:
        return _json({**_link_json(row), "status": state.value})
    return _json({"login": login, "server": server, "status": state.value}, status=202)


@endpoint(("DELETE",), manage=True)
def ssh_login_detail(request: HttpRequest, token: ServerToken, login: str) -> HttpResponse:
    login = _login(login)
    server = _own_server(token, request.GET.get("server", ""))
    if not flows.unlink(login, server, _api_context(request, token)):
        raise BadRequest("not_found")
    return HttpResponse(status=204)


def ssh_certificate_detail(request: HttpRequest, user: User) -> str:
    """What approving ``keyfob-ssh login`` gives (the device page's "ssh" scope, registered
    by the site): the logins a certificate opens, on which servers, for how long."""
    factors = {p.factor for p in proofs.live_proofs(request)}
    counting, waiting = rules.split(user, factors)
    context = {
        "links": [row for row in flows.logins_of(user) if row.server],
        # Logins of accounts this person acts for (issue 27): each under whose account it
        # is, and, for a grant whose rule this session does not meet, what it waits for.
        "granted": [(grant, False) for grant in counting if grant.logins]
        + [(grant, True) for grant in waiting if grant.logins],
        "hours": app_settings.ssh_cert_hours,
        "twofactor_on": has_2fa(user),
    }
    return render_to_string("api/ssh_certificate_detail.html", context, request=request)


def ssh_logins_section(request: HttpRequest, user: User) -> str:
    """The Security page's SSH section: the account's linked Unix logins, each with its last
    accepted SSH login (added to the page by ApiConfig.ready())."""
    rows = flows.logins_of(user)
    last: dict[tuple[str, str], SecurityEvent] = {}
    if rows:
        events = SecurityEvent.objects.filter(
            user=user, channel=Channel.SSH, kind=EventKind.SIGNIN_OK
        ).only("at", "detail", "address")[:200]
        for seen in events:
            key = (str(seen.detail.get("login", "")), str(seen.detail.get("server", "")))
            last.setdefault(key, seen)
    links = []
    for row in rows:
        event: SecurityEvent | None
        # A link for every server ("") is in force nowhere: no last login to show.
        event = last.get((row.login, row.server)) if row.server else None
        links.append({"login": row.login, "server": row.server, "last": event})
    context = {
        "links": links,
        "requests": flows.requests_of(user),
        "twofactor_on": has_2fa(user),
        "certificates": sshca.certificates_of(user, limit=20),
        "now": clock.now(),
    }
    return render_to_string("api/ssh_logins.html", context, request=request)


# The account's answers to a server's request, by outcome (the page's messages).
REQUEST_MESSAGES = {
    "linked": _("The login %(login)s on %(server)s is linked to your account."),
    "declined": _("The request to link %(login)s on %(server)s is refused."),
    "login_taken": _("The login %(login)s on %(server)s was linked to another account meanwhile."),
    "gone": _("This request is no longer waiting: it was answered, withdrawn or expired."),
}


@reauth_required
@require_http_methods(["GET", "POST"])
def ssh_request_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A server's request to link one of its logins to the account: what it means, then
    "Link it" or "Refuse". Behind a recent re-authentication (issue 22): a link lets that
    server ask for, and spend the tries of, the account's codes."""
    user = request.user
    assert isinstance(user, User)
    try:
        asked = flows.waiting_request(user, pk)
    except SshLinkRequest.DoesNotExist:
        raise Http404 from None
    if request.method == "GET":
        return render(request, "api/ssh_request.html", {"asked": asked})
    names = {"login": asked.login, "server": asked.server}
    try:
        if request.POST.get("answer") == "link":
            flows.confirm_request(request, user, pk)
            messages.success(request, REQUEST_MESSAGES["linked"] % names)
        elif request.POST.get("answer") == "refuse":
            flows.decline_request(request, user, pk)
            messages.success(request, REQUEST_MESSAGES["declined"] % names)
        else:  # a form not sent by the page: nothing changes
            return render(request, "api/ssh_request.html", {"asked": asked}, status=400)
    except SshLinkRequest.DoesNotExist:
        messages.error(request, REQUEST_MESSAGES["gone"])
    except flows.ApiError:
        messages.error(request, REQUEST_MESSAGES["login_taken"] % names)
    return redirect("account:security")
