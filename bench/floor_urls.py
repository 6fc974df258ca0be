"""The bench's URLconf: Keyfob's URLs, then one reference endpoint, POST /api/bench/floor
(under /api/, so that it is served by the same middleware stack as the SSH verify).

The floor is the least a request that reads one indexed row and makes one durable write can
cost on this machine, with this server and this database: a read of one row by its primary
key and the insert of one row, committed (on SQLite with ``synchronous=FULL``, as Keyfob
commits), through the same Django connection, then a small JSON answer. Its SQL is fixed
here, on tables of its own (made at the first request), and it imports nothing of Keyfob's
apps: the floor does not move when Keyfob's code does, so a ratio to it is a guard (issue
23: a floor written with the code it measured slowed down with it). Written once; leave it
alone.
"""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

ROWS = 1000
TABLES = (
    "CREATE TABLE IF NOT EXISTS bench_floor (id integer PRIMARY KEY, value varchar(64) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bench_floor_write (login varchar(32), at double precision)",
)
READ = "SELECT value FROM bench_floor WHERE id = %s"
WRITE = "INSERT INTO bench_floor_write (login, at) VALUES (%s, %s)"
_made = False


def _make_tables() -> None:
    global _made
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in TABLES:
            cursor.execute(sql)
        cursor.execute("SELECT count(*) FROM bench_floor")
        if cursor.fetchone()[0] == 0:
            rows = [(i, f"row {i}") for i in range(ROWS)]
            cursor.executemany("INSERT INTO bench_floor (id, value) VALUES (%s, %s)", rows)
    _made = True


@csrf_exempt
def floor(request: HttpRequest) -> HttpResponse:
    if not _made:
        _make_tables()
    login = json.loads(request.body)["login"]
    with connection.cursor() as cursor:
        cursor.execute(READ, [hash(login) % ROWS])
        (value,) = cursor.fetchone()
        with transaction.atomic():
            cursor.execute(WRITE, [login, float(len(value))])
    response = JsonResponse({"result": "accepted"})
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [
    path("", include("keyfob.site.urls")),
    path("api/bench/floor", floor),
]
