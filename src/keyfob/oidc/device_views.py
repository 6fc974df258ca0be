"""The device authorization grant's endpoints and pages (RFC 8628): django-oauth-toolkit's
views, subclassed where Keyfob's rules go (``keyfob.oidc.device`` does the work).

- ``oauth2_provider:device-authorization`` (POST /oidc/device/authorize/): the device asks;
- ``oauth2_provider:device`` (/oidc/device/): "Enter the code shown on your device";
- ``oauth2_provider:device-confirm`` (/oidc/device/confirm/CLIENT/CODE/): Approve / Deny;
- ``oauth2_provider:device-grant-status``: "You can go back to your device";
- ``oauth2_provider:token``: the device's polls (and every other grant's token request).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlencode

from django import forms
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from oauth2_provider.models import get_device_grant_model
from oauth2_provider.views import TokenView
from oauth2_provider.views.device import (
    DeviceAuthorizationView,
    DeviceConfirmView,
    DeviceGrantStatusView,
    DeviceUserCodeView,
)

from keyfob.accounts.models import User
from keyfob.accounts.text import wait_text
from keyfob.audit.events import client_address
from keyfob.oidc import device
from keyfob.oidc.models import Client

_DEVICE_GRANT = Client.GRANT_DEVICE_CODE


def _json_error(error: str, description: str, status: int = 400) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _client_id(request: HttpRequest) -> str:
    """The client_id of a request to an endpoint: the body's, or HTTP Basic's user name."""
    found = request.POST.get("client_id")
    if found:
        return found
    kind, _sep, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if kind.lower() != "basic":
        return ""
    try:
        return unquote(base64.b64decode(value, validate=True).decode().partition(":")[0])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


class DeviceAuthorizeView(DeviceAuthorizationView):
    """The device's request. The library checks the client (a public client gives its
    client_id, a confidential one authenticates) and the scopes; Keyfob answers with its
    own codes and absolute URLs, refuses clients not registered for the device grant, and
    saves where the request came from."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        headers, body, status = self.create_device_authorization_response(request)
        if status != 200:
            answer = json.loads(body) if isinstance(body, str) else body
            return JsonResponse(answer, status=status, headers=headers)
        client_id = _client_id(request)
        client = Client.objects.filter(client_id=client_id).first()
        if client is None or client.authorization_grant_type != _DEVICE_GRANT:
            return _json_error(
                "unauthorized_client", "This client is not registered for the device grant."
            )
        answer = dict(body)
        device.start(request, client.client_id, answer)
        response = JsonResponse(answer, headers=headers)
        response["Cache-Control"] = "no-store"
        return response


class KeyfobTokenView(TokenView):
    """The token endpoint. The library's view answers a device's poll itself, from the
    grant's status, before oauthlib sees it (no slow_down, no single use, a 500 without a
    device_code); here every grant goes through oauthlib, whose device grant asks
    ``KeyfobValidator.validate_device_code``."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.authorization_flow_token_response(request)


# --- "Enter the code shown on your device" ----------------------------------------------


class UserCodeForm(forms.Form):
    user_code = forms.CharField(
        label=gettext_lazy("Code shown on your device"),
        help_text=gettext_lazy("8 letters and digits, such as ABCD-EFGH."),
        max_length=40,
        error_messages={
            "required": gettext_lazy("Enter the code your device shows."),
            "max_length": gettext_lazy("This is longer than a code: it has 8 letters and digits."),
        },
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


def _code_error(error: device.UserCodeError) -> str:
    messages = {
        "incorrect": lambda: _(
            "This code is not right. Check the code your device shows and type it again."
        ),
        "expired": lambda: _("This code has expired. Start again on your device to get a new one."),
        "throttled": lambda: (
            _("Too many wrong codes. Try again in %(wait)s.")
            % {"wait": wait_text(error.retry_after)}
        ),
    }
    return messages[error.code]()


class DeviceCodeView(DeviceUserCodeView):
    """The code page (signed in first: LoginRequiredMixin). A wrong code counts against the
    account (``device.claim``)."""

    template_name = "oidc/device_code.html"
    form_class = UserCodeForm

    def get_initial(self) -> dict[str, Any]:
        return {"user_code": self.request.GET.get("user_code", "")[:40]}

    def form_valid(self, form: Any) -> HttpResponse:
        user = self.request.user
        assert isinstance(user, User)
        try:
            self.device_grant = device.claim(user, form.cleaned_data["user_code"])
        except device.UserCodeError as error:
            form.add_error("user_code", _code_error(error))
            return self.form_invalid(form)
        return redirect(self.get_success_url())


# --- Approve / Deny ----------------------------------------------------------------------


class DeviceApproveView(DeviceConfirmView):
    """What the device asks, from where, with Approve / Deny. Approving needs a recent
    proof (``device.fresh_enough``): a session without one is sent to "Confirm it is you"
    first (with a key when the account has one or the app needs one)."""

    template_name = "oidc/device_confirm.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        assert isinstance(user, User)
        found = device.pending(user, kwargs["client_id"], kwargs["user_code"])
        if found is None:
            return _not_waiting(request)
        blocked = device.cannot_approve(user, found.client)
        if not blocked and not device.fresh_enough(request, found.client):
            return _confirm_first(request, device.needs_key(user, found.client))
        return self._page(request, found, blocked=blocked)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        assert isinstance(user, User)
        client_id, user_code = kwargs["client_id"], kwargs["user_code"]
        action = request.POST.get("action")
        found = device.pending(user, client_id, user_code)
        if found is None:
            return _not_waiting(request)
        if action not in ("approve", "deny"):
            blocked = device.cannot_approve(user, found.client)
            return self._page(request, found, blocked=blocked, status=400, unknown=True)
        try:
            device.decide(request, client_id, user_code, approve=action == "approve")
        except device.NotWaiting:
            return _not_waiting(request)
        except device.NotFresh:
            if device.cannot_approve(user, found.client):
                return self._page(request, found, blocked=True, status=403)
            return _confirm_first(request, device.needs_key(user, found.client))
        return redirect(
            reverse(
                "oauth2_provider:device-grant-status",
                kwargs={"client_id": client_id, "user_code": user_code},
            )
        )

    def _page(
        self,
        request: HttpRequest,
        found: device.Pending,
        *,
        blocked: bool,
        status: int = 200,
        unknown: bool = False,
    ) -> HttpResponse:
        from oauth2_provider.scopes import get_scopes_backend

        described = get_scopes_backend().get_all_scopes()
        return render(
            request,
            self.template_name,
            {
                "application": found.client,
                "address": found.address,
                "here": client_address(request),
                "scope_names": [str(described.get(s, s)) for s in found.scopes],
                "expires": found.grant.expires,
                "blocked": blocked,
                "unknown": unknown,
                # What a scope gives, said by the app that owns it (HTML; see SCOPE_DETAILS).
                "details": [
                    SCOPE_DETAILS[scope](request, request.user)
                    for scope in found.scopes
                    if scope in SCOPE_DETAILS
                ],
            },
            status=status,
        )


# What approving a scope gives, in detail, by scope: each returns HTML for the approval page.
# Filled by the site (keyfob.site.apps): the "ssh" scope's logins and lifetime are the api
# app's, a sibling oidc does not import.
SCOPE_DETAILS: dict[str, Callable[[HttpRequest, Any], str]] = {}


def _confirm_first(request: HttpRequest, need_key: bool) -> HttpResponse:
    """To "Confirm it is you" (with a key for ``need_key``), then back to this page."""
    params = {"next": request.path}
    if need_key:
        params["need"] = "key"
    return redirect(reverse("account:reauth") + "?" + urlencode(params))


def _not_waiting(request: HttpRequest) -> HttpResponse:
    return render(request, "oidc/device_gone.html", status=404)


class DeviceDoneView(DeviceGrantStatusView):
    """After Approve or Deny: what happens on the device now."""

    template_name = "oidc/device_done.html"

    def get_object(self, queryset: Any = None) -> Any:
        from django.http import Http404

        model = get_device_grant_model()
        grant = (
            model.objects.filter(
                client_id=self.kwargs["client_id"],
                user_code=self.kwargs["user_code"],
                user=self.request.user,
            )
            .order_by("-pk")
            .first()
        )
        if grant is None:
            raise Http404()
        return grant

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        grant = context["object"]
        context["application"] = Client.objects.filter(client_id=grant.client_id).first()
        context["approved"] = grant.status == grant.AUTHORIZED
        return context
