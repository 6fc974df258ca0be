"""The provider's pages and endpoints: django-oauth-toolkit's views, with Keyfob's rules
at its extension points. The authorization endpoint decides, before any code is issued,
whether this session signed in strongly and recently enough for what the app asks, and
whether the person allowed the app; the rest is the library's."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.forms import AllowForm
from oauth2_provider.views import (
    AuthorizationView,
    ConnectDiscoveryInfoView,
    RPInitiatedLogoutView,
)
from oauthlib.oauth2.rfc6749 import errors as oauth_errors
from oauthlib.openid.connect.core import exceptions as oidc_errors

from keyfob.accounts.errors import ReauthRequired
from keyfob.accounts.models import User
from keyfob.core import clock
from keyfob.oidc import claims, flows, keys
from keyfob.oidc.models import Client
from keyfob.oidc.validators import _KEY
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor.models import SecurityKey


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

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)
        client = Client.objects.get(client_id=credentials["client_id"])
        prompt = set(request.GET.get("prompt", "").split())
        silent = "none" in prompt
        try:
            self._check_recent(request, client, credentials, prompt, silent)
            self._check_strength(request, client, credentials, silent)
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
        strength = flows.session_strength(request)
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
        self, request: HttpRequest, client: Client, credentials: dict[str, Any], silent: bool
    ) -> None:
        wanted = claims.wanted_level(
            request.GET.get("acr_values"),
            credentials.get("claims"),
            client.require_phishing_resistant,
        )
        if flows.session_strength(request).meets(wanted):
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


@login_required
@require_POST
def revoke_app_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    try:
        name = flows.revoke_app(request, user, pk)
    except ReauthRequired:
        return redirect(
            reverse("account:reauth") + "?" + urlencode({"next": reverse("account:security")})
        )
    except flows.NoSuchApp:
        messages.error(request, _("That app is not in your list any more."))
    else:
        messages.success(request, _("%(app)s can no longer sign you in.") % {"app": name})
    return redirect(reverse("account:security") + "#apps")
