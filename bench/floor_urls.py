"""The bench's URLconf: Keyfob's URLs, then one reference endpoint, POST /bench/floor.

It does the database work an SSH verify cannot skip, and nothing else: the verify's reads
(the token; the login link with its account, then its authenticators: the same three
queries) and its durable write of the same rows (the authenticator's row rewritten as it is, one
security event, in one transaction), then the same JSON answer. No token check, no code,
no throttle, no validation. Its throughput beside /healthz, in the same run, is the most a
verify can reach on this machine with this server; what the verify's own code costs is the
distance from it.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from keyfob.api.models import ServerToken, SshLogin
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.core import clock
from keyfob.twofactor.models import Authenticator


@csrf_exempt
def floor(request: HttpRequest) -> HttpResponse:
    login = json.loads(request.body)["login"]
    key = request.headers["Authorization"].split("_")[1]  # kfs_<key>_<secret>
    token = ServerToken.objects.filter(key=key, revoked_at__isnull=True).first()
    assert token is not None, "the bench's token exists"
    link = SshLogin.objects.select_related("user").filter(login=login, server=token.name).first()
    assert link is not None, "the bench's accounts exist"
    auth = Authenticator.objects.filter(user=link.user, confirmed_at__isnull=False).first()
    assert auth is not None, "the bench's accounts have 2FA on"
    with transaction.atomic():
        Authenticator.objects.filter(pk=auth.pk).update(last_step=F("last_step"))
        SecurityEvent.objects.create(
            user_id=link.user_id,
            kind=str(EventKind.SIGNIN_OK),
            at=clock.now(),
            channel=str(Channel.SSH),
            address="192.0.2.10",
            user_agent="ssh:bench",
            detail={},
        )
    response = JsonResponse({"result": "accepted"})
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("", include("keyfob.site.urls")),
    path("bench/floor", floor),
]
