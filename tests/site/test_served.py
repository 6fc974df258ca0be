"""What a real `keyfob serve` process does: behind HTTPS, probes, JSON logs."""

from __future__ import annotations

import json
from pathlib import Path

from keyfob import otp
from tests.site.conftest import (
    PASSWORD,
    PRODUCTION,
    Browser,
    Server,
    base_env,
    enrol,
    keyfob,
    start_server,
)


def test_behind_https_cookies_hsts_and_redirect(tmp_path: Path, servers: list[Server]) -> None:
    env = base_env(tmp_path, **{**PRODUCTION, "KEYFOB_ALLOWED_HOSTS": "127.0.0.1"})
    assert keyfob(env, "migrate", "--no-input").returncode == 0
    made = keyfob(env, "createuser", "bob@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    server = start_server(env)
    servers.append(server)
    origin = f"https://127.0.0.1:{server.port}"
    proxy = {"X-Forwarded-Proto": "https"}

    # Plain HTTP is sent to HTTPS, except for the load balancer's probes.
    status, headers, _ = server.request("GET", "/login/")
    assert status == 301 and headers["location"] == [f"{origin}/login/"]
    assert server.request("GET", "/healthz")[0] == 200

    status, headers, body = server.request("GET", "/login/", headers=proxy)
    assert status == 200
    assert headers["strict-transport-security"] == ["max-age=31536000"]
    (csrf_cookie,) = headers["set-cookie"]
    assert csrf_cookie.startswith("__Host-keyfob-csrf=")
    for attribute in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"]:
        assert attribute in csrf_cookie
    assert "Domain=" not in csrf_cookie  # the __Host- prefix forbids it

    browser = Browser()
    browser.cookies["__Host-keyfob-csrf"] = csrf_cookie.split(";")[0].split("=", 1)[1]
    browser.csrf = body.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    form = {"email": "bob@example.com", "password": PASSWORD}
    from urllib.parse import urlencode

    status, headers, _ = server.request(
        "POST",
        "/login/",
        body=urlencode({"csrfmiddlewaretoken": browser.csrf, **form}).encode(),
        headers={
            **proxy,
            "Origin": origin,
            "Referer": f"{origin}/login/",
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"__Host-keyfob-csrf={browser.cookies['__Host-keyfob-csrf']}",
        },
    )
    assert status == 302, headers
    session = next(c for c in headers["set-cookie"] if c.startswith("__Host-keyfob-session="))
    for attribute in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"]:
        assert attribute in session
    assert "Domain=" not in session


def test_probes_without_a_session(tmp_path: Path, servers: list[Server]) -> None:
    env = base_env(tmp_path)
    server = start_server(env)  # before `migrate`: the process answers, it is not ready
    servers.append(server)
    status, headers, body = server.request("GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, headers, body = server.request("GET", "/readyz")
    assert status == 503 and json.loads(body)["status"] == "unavailable"
    assert "set-cookie" not in headers

    assert keyfob(env, "migrate", "--no-input").returncode == 0
    status, headers, body = server.request("GET", "/readyz")
    assert status == 200 and json.loads(body) == {
        "status": "ok",
        "database": "ok",
        "migrations": "applied",
    }
    assert "set-cookie" not in headers and headers["content-type"] == ["application/json"]


def test_json_logs_carry_no_code_or_password(tmp_path: Path, servers: list[Server]) -> None:
    env = base_env(tmp_path, KEYFOB_LOG_FORMAT="json")
    assert keyfob(env, "migrate", "--no-input").returncode == 0
    secret = enrol(env)
    # Deliver the enrolment's "2FA is on" notice now: without KEYFOB_SMTP_URL the server's
    # sender would print it among the log lines.
    assert keyfob(env, "send-mail").returncode == 0
    server = start_server(env, workers=1)
    servers.append(server)
    browser = Browser()
    status, _, _ = browser.get(server, "/login/")
    browser.post(server, "/login/", {"email": "alice@example.com", "password": "wrong password!"})
    browser.password_step(server)
    import time

    now = time.time()
    valid = {otp.totp(secret, now + 30 * k) for k in range(-25, 26)}
    wrong = next(c for c in ("314159", "271828", "161803") if c not in valid)
    assert browser.post(server, "/login/code/", {"code": wrong})[0] == 200
    code = otp.totp(secret, time.time())
    status, headers, _ = browser.post(server, "/login/code/", {"code": code})
    assert status == 302
    request_id = headers["x-request-id"][0]
    server.stop()

    text = server.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all(
        {"time", "level", "request_id", "account_id", "event"} <= set(line) for line in lines
    )
    signed_in = next(line for line in lines if line["request_id"] == request_id)
    assert signed_in["path"] == "/login/code/" and signed_in["status"] == 302
    assert signed_in["account_id"] is not None
    for secret_text in [PASSWORD, "wrong password!", code, wrong, otp.b32encode_secret(secret)]:
        assert secret_text not in text
