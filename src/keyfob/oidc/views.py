"""The provider's pages and endpoints: django-oauth-toolkit's views, with Keyfob's rules
at its extension points. The authorization endpoint decides, before any code is issued,
whether this session signed in strongly and recently enough for what the app asks, and
whether the person allowed the app; the rest is the library's."""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from oauth2_provider import views as dot
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.oauth2_validators import is_valid_resource_uri
from oauth2_provider.views import (
    AuthorizationView,
    ConnectDiscoveryInfoView,
    RPInitiatedLogoutView,
)
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from oauthlib.openid.connect.core import exceptions as oidc_errors

from keyfob.accounts.decorators import reauth_required
from keyfob.accounts.models import User
from keyfob.core import clock
from keyfob.oidc import claims, device_views, flows, keys
from keyfob.oidc.models import Client
from keyfob.oidc.validators import _KEY
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor.models import SecurityKey

# The longest value one authorization parameter may have, and the longest query. A state or
# nonce is an opaque value an app makes (a random string, at most a signed blob of a few
# hundred characters); claims is a small JSON object. gunicorn refuses a request line over
# 4094 bytes anyway; this holds whatever serves Keyfob, and keeps a value this long out of
# the redirect back to the app, the sign-in page's "next" and the grant's row.
MAX_PARAMETER = 2048
MAX_QUERY = 8192


class KeyfobAllowForm(AllowForm):
    # Carried to the POST so the level asked for is checked again there.
    acr_values = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput())


class _Stop(Exception):
    """The request cannot go on as asked; ``response`` says what happens instead."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


class AuthorizeView(AuthorizationView):
    template_name = "oidc/authorize.html"
    form_class = KeyfobAllowForm

    # --- GET: the checks, then consent or the code ------------------------------------

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        too_long = _too_long(request)
        if too_long is not None:
            return too_long
        twice = _repeated(request)
        if twice is not None:
            # RFC 6749 3.1: no parameter twice. Which of two values would the library
            # check, and which would it keep? Neither: a page, nothing sent anywhere.
            error = oauth_errors.InvalidRequestFatalError(
                description=f"{twice}: given more than once"
            )
            return self.render_to_response({"error": error}, status=400)
        return super().dispatch(request, *args, **kwargs)

    def error_response(self, error: Any, application: Any, **kwargs: Any) -> HttpResponse:
        """The library's answer, but for what it gets wrong before it knows the client:
        an error found before oauthlib knew where to send it (prompt=none with other
        values, a missing or plain PKCE challenge…) would go to "?error=…", and one for an
        app on a loopback http address would be refused for its scheme (Django's bare
        400). It goes to the app's redirect URI when that is registered exactly, else it
        is a page."""
        oauthlib_error = error.oauthlib_error
        if isinstance(error, FatalClientError):
            return super().error_response(error, application, **kwargs)
        if application is not None and oauthlib_error.redirect_uri:
            return super().error_response(error, application, **kwargs)
        found = _registered(self.request)
        if found is None:
            status = oauthlib_error.status_code
            return self.render_to_response({"error": oauthlib_error}, status=status)
        client, redirect_uri = found
        if oauthlib_error.redirect_uri == redirect_uri:
            return super().error_response(error, client, **kwargs)
        credentials = {"redirect_uri": redirect_uri, "state": self.request.GET.get("state")}
        return self._error(client, credentials, oauthlib_error)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        client = Client.objects.get(client_id=credentials["client_id"])
        if not _S256_CHALLENGE.fullmatch(credentials.get("code_challenge") or ""):
            # RFC 7636 4.2: BASE64URL(SHA-256(verifier)) is 43 characters; anything else
            # matches no verifier, so the code it would get could never be used.
            bad_challenge = oauth_errors.InvalidRequestError(
                description="code_challenge: 43 base64url characters (S256)"
            )
            return self._error(client, credentials, bad_challenge)
        resources = request.GET.getlist("resource")
        if resources:
            # RFC 8707, as the library's own view does it: each an absolute URI, kept as a
            # list (the grant's field refuses anything else, which was a 500).
            if not all(is_valid_resource_uri(r) for r in resources):
                bad_target = oauth_errors.CustomOAuth2Error(
                    error="invalid_target", description="resource: an absolute URI"
                )
                return self._error(client, credentials, bad_target)
            credentials["resource"] = resources
        prompt = set(request.GET.get("prompt", "").split())
        silent = "none" in prompt
        # How this session signed in, read once for both checks.
        strength = flows.session_strength(request)
        try:
            self._check_recent(request, client, credentials, strength, prompt, silent)
            self._check_strength(request, client, credentials, strength, silent)
        except _Stop as stop:
            return stop.response
        user = request.user
        assert isinstance(user, User)
        if flows.has_consent(user, client, scopes):
            return self._answer(request, client, scopes, credentials, allow=True)
        if silent:
            return self._error(client, credentials, oidc_errors.ConsentRequired())
        return super().get(request, *args, **kwargs)

    def get_initial(self) -> dict[str, Any]:
        initial = super().get_initial()
        initial["acr_values"] = self.request.GET.get("acr_values", "")
        return initial

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if self.request.method == "GET":
            context.setdefault("scope_names", _scope_names(kwargs.get("scopes") or []))
        return context

    def _check_recent(
        self,
        request: HttpRequest,
        client: Client,
        credentials: dict[str, Any],
        strength: claims.Strength,
        prompt: set[str],
        silent: bool,
    ) -> None:
        """prompt=login and max_age: "Confirm it is you" first (login_required when the
        app asked for no page)."""
        raw = request.GET.get("max_age")
        max_age: int | None = None
        if raw is not None:
            if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
                raise _Stop(
                    self._error(
                        client,
                        credentials,
                        oauth_errors.InvalidRequestError(description="max_age: whole seconds"),
                    )
                )
            max_age = int(raw)
        now = clock.now()
        stale = strength.auth_time is None or (
            max_age is not None and (now - strength.auth_time).total_seconds() > max_age
        )
        if "login" in prompt:
            # Satisfied by a confirmation made for this very request (its URL comes back
            # without prompt=login), so a fresh proof from just now is asked.
            stale = True
        if not stale:
            return
        if silent:
            raise _Stop(self._error(client, credentials, oidc_errors.LoginRequired()))
        raise _Stop(_confirm(request, need_key=False, drop_prompt=True))

    def _check_strength(
        self,
        request: HttpRequest,
        client: Client,
        credentials: dict[str, Any],
        strength: claims.Strength,
        silent: bool,
    ) -> None:
        wanted = claims.wanted_level(
            request.GET.get("acr_values"),
            credentials.get("claims"),
            client.require_phishing_resistant,
        )
        if strength.meets(wanted):
            return
        user = request.user
        assert isinstance(user, User)
        if silent:
            raise _Stop(self._error(client, credentials, oidc_errors.InteractionRequired()))
        has_key = SecurityKey.objects.filter(user=user).exists()
        if wanted == claims.PHR and has_key:
            raise _Stop(_confirm(request, need_key=True, drop_prompt=False))
        if wanted == claims.MFA and twofactor.has_2fa(user):
            raise _Stop(_confirm(request, need_key=False, drop_prompt=False))
        # The account cannot give what the app asks: say how to, and let the person go
        # back to the app, which is told access_denied (never a weaker token).
        flows.refused(request, user, client, wanted)
        back = self._error_url(client, credentials, oauth_errors.AccessDeniedError())
        raise _Stop(
            render(
                request,
                "oidc/stronger.html",
                {
                    "client": client,
                    "wanted": wanted,
                    "back": back,
                    "has_2fa": twofactor.has_2fa(user),
                },
                status=403,
            )
        )

    # --- POST (Allow / Deny) -------------------------------------------------------------

    def form_valid(self, form: Any) -> HttpResponse:
        self._acr_values = form.cleaned_data.get("acr_values") or ""
        return super().form_valid(form)

    def create_authorization_response(self, request, scopes, credentials, allow):
        """Every code goes through here (the Allow button, remembered consent, a
        first-party app): the session must meet what the app needs *now*, and the sign-in
        record goes with the code."""
        client = Client.objects.get(client_id=credentials["client_id"])
        user = request.user
        if allow:
            raw_claims = credentials.get("claims")
            if isinstance(raw_claims, str):
                try:
                    raw_claims = json.loads(raw_claims)
                except ValueError:
                    raw_claims = None
            wanted = claims.wanted_level(
                getattr(self, "_acr_values", None) or request.GET.get("acr_values"),
                raw_claims,
                client.require_phishing_resistant,
            )
            if not flows.session_strength(request).meets(wanted):
                raise OAuthToolkitError(
                    error=oauth_errors.AccessDeniedError(state=credentials.get("state")),
                    redirect_uri=credentials.get("redirect_uri"),
                )
            if request.method == "POST":
                flows.give_consent(
                    request, user, client, scopes.split() if isinstance(scopes, str) else scopes
                )
            credentials[_KEY] = flows.authorization_for(request, client)
        answer = super().create_authorization_response(request, scopes, credentials, allow)
        if allow:
            flows.signed_in_to_app(request, user, client)
        return answer

    # --- answers ------------------------------------------------------------------------

    def redirect(self, redirect_to: str, application: Any) -> HttpResponse:
        """Every answer to the app (a code or an error) leaves through here, with RFC 9207's
        ``iss``: the issuer of the discovery document. (The library derives it from an RFC
        8414 metadata URL Keyfob does not serve, giving the bare host, and leaves it out of
        its own ``login_required`` for a signed-out ``prompt=none``.)"""
        response = super().redirect(_with_iss(redirect_to, flows.issuer(self.request)), application)
        return back_to_app(self.request, response, application)

    def _answer(
        self,
        request: HttpRequest,
        client: Client,
        scopes: list[str],
        credentials: dict[str, Any],
        *,
        allow: bool,
    ) -> HttpResponse:
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=request, scopes=" ".join(scopes), credentials=credentials, allow=allow
            )
        except OAuthToolkitError as error:
            return self.error_response(error, client)
        return self.redirect(uri, client)

    def _error_url(self, client: Client, credentials: dict[str, Any], error: Any) -> str:
        params = {"error": error.error}
        if getattr(error, "description", None):
            params["error_description"] = error.description
        if credentials.get("state"):
            params["state"] = credentials["state"]
        params["iss"] = flows.issuer(self.request)
        redirect_uri = credentials["redirect_uri"]
        return redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)

    def _error(self, client: Client, credentials: dict[str, Any], error: Any) -> HttpResponse:
        return self.redirect(self._error_url(client, credentials, error), client)


def _with_iss(uri: str, issuer: str) -> str:
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    return parts._replace(query=urlencode([*query, ("iss", issuer)])).geturl()


def back_to_app(
    request: HttpRequest, response: HttpResponse, client: Client | None
) -> HttpResponse:
    """``response`` as is, or, for a redirect to another origin at the end of a navigation
    that started on one of Keyfob's own pages, a page that goes on to it.

    Keyfob's pages say ``form-action 'self'`` (site.middleware), and Chromium applies that
    to every redirect that follows a form's submission: the Allow button, the code step
    or "Confirm it is you" (whose ``next`` is this endpoint) and the sign-out confirmation
    would stop at the app's redirect. Such a navigation reaches here with
    ``Sec-Fetch-Site: same-origin``; one the app started says ``cross-site`` or
    ``same-site`` and gets the plain redirect. The page's own ``<meta http-equiv=refresh>``
    is a new navigation, which no CSP directive governs, and its link is for a browser
    that refreshes nothing by itself.
    """
    location = response.get("Location", "") if response.status_code in (301, 302) else ""
    if not location or request.headers.get("Sec-Fetch-Site") != "same-origin":
        return response
    target = urlsplit(location)
    if not target.scheme or (target.scheme, target.netloc) == (
        request.scheme,
        request.get_host(),
    ):
        return response
    return render(
        request,
        "oidc/back_to_app.html",
        {"location": location, "app": client.name if client is not None else ""},
    )


class LogoutView(RPInitiatedLogoutView):
    """The library's RP-initiated logout, with Keyfob's confirmation page
    (``oauth2_provider/logout_confirm.html``, in this app's templates). Signing out ends the
    session the usual way, and its end revokes the tokens its sign-in gave
    (``signins_ended``): the library's own deletion of every token of the person
    (OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS) is off, as it would also sign out the apps of
    the person's other sessions."""

    def do_logout(
        self, application=None, post_logout_redirect_uri=None, state=None, token_user=None
    ):
        response = super().do_logout(application, post_logout_redirect_uri, state, token_user)
        return back_to_app(self.request, response, application)


_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 8707 lets a request name several resources; every other parameter comes once.
_MAY_REPEAT = frozenset({"resource"})


def _repeated(request: HttpRequest) -> str | None:
    """The name of a parameter given more than once, or None."""
    for name, values in request.GET.lists():
        if len(values) > 1 and name not in _MAY_REPEAT:
            return name
    return None


def _registered(request: HttpRequest) -> tuple[Client, str] | None:
    """The client and redirect URI of an authorization request, if the client exists, is
    usable and registered that very URI (what makes an error safe to send there)."""
    client_id = request.GET.get("client_id", "")
    redirect_uri = request.GET.get("redirect_uri", "")
    if not client_id or not redirect_uri:
        return None
    client = Client.objects.filter(client_id=client_id).first()
    if (
        client is None
        or not client.is_usable(request)
        or not client.redirect_uri_allowed(redirect_uri)
    ):
        return None
    return client, redirect_uri


def _too_long(request: HttpRequest) -> HttpResponse | None:
    """A page (400) for a request longer than an app ever needs, before anything reads it:
    not sent back to the app, whose own value would then fill the address bar."""
    query = request.META.get("QUERY_STRING", "")
    given = [request.GET] + ([request.POST] if request.method == "POST" else [])
    values = [v for data in given for _name, vs in data.lists() for v in vs]
    if len(query) <= MAX_QUERY and all(len(v) <= MAX_PARAMETER for v in values):
        return None
    return render(request, "oidc/too_long.html", status=400)


def _confirm(request: HttpRequest, *, need_key: bool, drop_prompt: bool) -> HttpResponse:
    """To "Confirm it is you" (with a key, for ``need_key``), then back to this request."""
    parts = urlsplit(request.get_full_path())
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not (drop_prompt and k in ("prompt", "max_age"))
    ]
    back = parts.path + ("?" + urlencode(query) if query else "")
    params = {"next": back}
    if need_key:
        params["need"] = "key"
    return redirect(reverse("account:reauth") + "?" + urlencode(params))


def _scope_names(scopes: list[str]) -> list[str]:
    from oauth2_provider.scopes import get_scopes_backend

    described = get_scopes_backend().get_all_scopes()
    return [str(described.get(s, s)) for s in scopes]


def _client_id_of(request: HttpRequest) -> str:
    """The client id a token or device request claims (HTTP Basic, RFC 6749 2.3.1: each
    part form-encoded, or the body's client_id), or "" for junk."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.partition(":")[0])
    return str(request.POST.get("client_id", ""))


def _error_of(response: HttpResponse) -> str | None:
    """The OAuth error of a token or device endpoint's answer, None for a success."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return "invalid_request"
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else "invalid_request"


class ClientThrottleMixin:
    """Per client and address (core.throttle.OIDC_CLIENT): a client that keeps failing to
    authenticate or sending codes it does not hold is refused for a while (429, with
    Retry-After), before the library reads anything else."""

    # The device endpoint's only question is the client (oauthlib says invalid_request
    # for an unknown client_id there): any error there is a failed client authentication.
    every_error_is_the_client = False

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        call = flows.client_call(request, _client_id_of(request))
        wait = flows.client_wait(call)
        if wait:
            response = JsonResponse(
                {
                    "error": "invalid_request",
                    "error_description": "too many failed requests: try again later",
                },
                status=429,
            )
            response["Retry-After"] = str(math.ceil(wait))
            response["Cache-Control"] = "no-store"
            return response
        response = super().post(request, *args, **kwargs)  # type: ignore[misc]
        error = _error_of(response)
        if error is not None and self.every_error_is_the_client:
            error = "invalid_client"
        flows.client_answered(call, error)
        return response


# The grants Keyfob answers; any other is refused before the library looks at it (its
# password grant checked the password before refusing the client, a password oracle
# past the sign-in's throttle and second factor).
GRANT_TYPES = frozenset({"authorization_code", "refresh_token", Client.GRANT_DEVICE_CODE})


class TokenView(ClientThrottleMixin, device_views.KeyfobTokenView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        grant_type = request.POST.get("grant_type", "")
        if grant_type not in GRANT_TYPES:
            return _token_error("unsupported_grant_type", "authorization_code, refresh_token")
        if grant_type == Client.GRANT_DEVICE_CODE and not request.POST.get("device_code"):
            # The library reads it with [] (a 500 when it is missing).
            return _token_error("invalid_request", "device_code: missing")
        # One transaction, so the locks the validator takes on the code or the refresh
        # token hold until its tokens are saved (single use under concurrency).
        with transaction.atomic():
            return super().post(request, *args, **kwargs)


def _token_error(error: str, description: str) -> HttpResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=400)
    response["Cache-Control"] = "no-store"
    return response


class DeviceAuthorizationView(ClientThrottleMixin, device_views.DeviceAuthorizeView):
    """The device's request (device_views: Keyfob's codes and URLs, the address saved),
    throttled per client and address like the token endpoint."""

    # The device endpoint's only question is the client (oauthlib says invalid_request
    # for an unknown client_id there): any error there is a failed client authentication.
    every_error_is_the_client = True


class UserInfoView(dot.UserInfoView):
    """The library's userinfo, but an access token in the query string is refused (RFC
    9700 4.3.2, RFC 6750 5.3: it ends up in logs and histories). The library refuses it
    for its protected resources, but its userinfo view did not ask."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "access_token" in request.GET:
            response = JsonResponse(
                {
                    "error": "invalid_request",
                    "error_description": "send the access token in the Authorization header",
                },
                status=400,
            )
            response["WWW-Authenticate"] = 'Bearer error="invalid_request"'
            return response
        return super().dispatch(request, *args, **kwargs)


class DiscoveryView(ConnectDiscoveryInfoView):
    """The library's discovery document, saying what Keyfob does: RS256 only, the acr
    values, the back-channel logout, the device endpoint."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = super().get(request, *args, **kwargs)
        data = json.loads(response.content)
        data["id_token_signing_alg_values_supported"] = [keys.ALGORITHM]
        data["acr_values_supported"] = list(claims.LEVELS)
        data["claims_parameter_supported"] = True
        data["grant_types_supported"] = [
            "authorization_code",
            "refresh_token",
            Client.GRANT_DEVICE_CODE,
        ]
        data["response_modes_supported"] = ["query"]
        data["code_challenge_methods_supported"] = ["S256"]
        data["revocation_endpoint"] = request.build_absolute_uri(
            reverse("oauth2_provider:revoke-token")
        )
        data["device_authorization_endpoint"] = request.build_absolute_uri(
            reverse("oauth2_provider:device-authorization")
        )
        data["backchannel_logout_supported"] = True
        data["backchannel_logout_session_supported"] = True
        out = JsonResponse(data)
        out["Access-Control-Allow-Origin"] = "*"
        return out


def jwks_view(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(keys.jwks())
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "public, max-age=300"
    return response


# --- The Security page's "Apps that can sign you in" ----------------------------------


def apps_section(request: HttpRequest, user: User) -> str:
    return render_to_string(
        "oidc/apps_section.html",
        # No zone in the profile: the Security page's script shows times in the browser's.
        {"apps": flows.apps_of(user), "browser_time_zone": not user.time_zone},
        request=request,
    )


@reauth_required
@require_POST
def revoke_app_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Remove an app from "Apps that can sign you in" (after "Confirm it is you", the form
    is applied by the guard)."""
    user = request.user
    assert isinstance(user, User)
    try:
        name = flows.revoke_app(request, user, pk)
    except flows.NoSuchApp:
        messages.error(request, _("That app is not in your list any more."))
    else:
        messages.success(request, _("%(app)s can no longer sign you in.") % {"app": name})
    return redirect(reverse("account:security") + "#apps")
