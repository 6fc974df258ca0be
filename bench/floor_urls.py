"""The bench's URLconf: Keyfob's URLs, then one reference endpoint, POST /bench/floor.

It does the database work an SSH verify cannot skip, and nothing else: the verify's one
read (token, login link, account and authenticator: the same query) and one durable write
of the same rows (the authenticator's row rewritten as it is, one security event), then the
same JSON answer. No token check, no code, no throttle, no validation. Its throughput beside
/healthz, in the same run, is the most the verify/health ratio can reach on this machine
with this server; what the verify's own code costs is the distance from it.
"""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from keyfob import sql
from keyfob.accounts.models import User
from keyfob.api import flows
from keyfob.api.models import ServerToken
from keyfob.audit.events import EVENT_COLUMNS, Context, event_values
from keyfob.audit.models import Channel, EventKind, SecurityEvent
from keyfob.twofactor.models import Authenticator

# Where the user's and the authenticator's ids are in the read's row.
USER_ID = len(flows.READ[ServerToken])
AUTH_ID = USER_ID + len(flows.READ[User])
CONTEXT = Context(channel=Channel.SSH, address="192.0.2.10", user_agent="ssh:bench")


@csrf_exempt
def floor(request: HttpRequest) -> HttpResponse:
    login = json.loads(request.body)["login"]
    key = request.headers["Authorization"].split("_")[1]  # kfs_<key>_<secret>
    select = sql.join_select(flows.TOKEN_ACCOUNT, flows.token_account_source(), flows.READ)
    found = sql.row(select, [login, key])
    assert found is not None and found[AUTH_ID] is not None, "the bench's accounts exist"
    touch = f"UPDATE {sql.table(Authenticator)} SET last_step = last_step WHERE id = %s"  # noqa: S608
    event = event_values(EventKind.SIGNIN_OK, CONTEXT, {})
    if connection.vendor == "postgresql":
        # One statement, committed on its own, as the verify's write is.
        sql.count(
            f"WITH touched AS ({touch} RETURNING user_id) "  # noqa: S608
            f"INSERT INTO {sql.table(SecurityEvent)} {EVENT_COLUMNS} SELECT user_id, %s, "
            "%s::timestamptz, %s, %s::inet, %s, %s::jsonb FROM touched",
            [found[AUTH_ID], *event],
        )
    else:
        with transaction.atomic():
            sql.count(touch, [found[AUTH_ID]])
            sql.count(
                f"INSERT INTO {sql.table(SecurityEvent)} {EVENT_COLUMNS} "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [found[USER_ID], *event],
            )
    response = JsonResponse({"result": "accepted"})
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("", include("keyfob.site.urls")),
    path("bench/floor", floor),
]
