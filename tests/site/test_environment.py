"""Each setting that used to be documented but never read now changes what Keyfob does.

The values are given in the ENVIRONMENT of real processes (`keyfob serve`, `keyfob
prune-activity`, a Django script), which is what proves that site/settings.py reads them.
One server serves every page check; each check has its own account, so single use and the
throttle of one do not reach another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.urls import reverse

from keyfob import otp
from tests.site.conftest import (
    Browser,
    Server,
    base_env,
    django_eval,
    keyfob,
    start_server,
)

pytestmark = pytest.mark.slow

SETTINGS = {
    "KEYFOB_SUPPORT_EMAIL": "help@provider.test",
    "KEYFOB_TRUST_DAYS": "7",
    "KEYFOB_TOTP_WINDOW": "0",
    "KEYFOB_REAUTH_SECONDS": "2",
    "KEYFOB_API_MAX_BODY": "512",
    "KEYFOB_SUPPORT_FOUR_EYES": "off",
    "KEYFOB_ACTIVITY_RETENTION_DAYS": "7",
}
ACCOUNTS = ["email@example.com", "trust@example.com", "window@example.com", "reauth@example.com"]

ENROL = f"""
from tests.conftest import enrol, make_user
result = {{email: enrol(make_user(email)).b32 for email in {ACCOUNTS!r}}}
"""


@dataclass
class Portal:
    env: dict[str, str]
    server: Server
    secrets: dict[str, bytes]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    env = base_env(tmp_path_factory.mktemp("settings"), **SETTINGS)
    migrated = keyfob(env, "migrate", "--no-input")
    assert migrated.returncode == 0, migrated.stderr
    made = django_eval(env, ENROL)
    assert isinstance(made, dict)
    server = start_server(env, workers=1)
    try:
        yield Portal(env, server, {k: otp.b32decode_secret(v) for k, v in made.items()})
    finally:
        server.stop()


def steady_now() -> float:
    """Now, or the start of the next 30-second step if this one ends within 5 seconds."""
    now = time.time()
    if now % 30 > 25:
        time.sleep(30 - now % 30 + 0.1)
    return time.time()


def signed_in(portal: Portal, email: str) -> Browser:
    browser = Browser()
    browser.password_step(portal.server, email)
    code = otp.totp(portal.secrets[email], steady_now())
    status, _, page = browser.post(portal.server, reverse("login-code"), {"code": code})
    assert status == 302, page
    return browser


def test_support_email_is_the_address_customers_are_given(portal: Portal) -> None:
    browser = Browser()
    browser.password_step(portal.server, "email@example.com")
    status, _, page = browser.get(portal.server, reverse("login-code"))
    assert status == 200
    assert "help@provider.test" in page and "support@example.com" not in page


def test_trust_days_is_the_period_offered_and_granted(portal: Portal) -> None:
    browser = Browser()
    browser.password_step(portal.server, "trust@example.com")
    _, _, page = browser.get(portal.server, reverse("login-code"))
    assert "Trust this browser for 7 days" in page and "30 days" not in page
    code = otp.totp(portal.secrets["trust@example.com"], steady_now())
    status, headers, _ = browser.post(
        portal.server, reverse("login-code"), {"code": code, "trust": "on"}
    )
    assert status == 302
    (trust,) = [c for c in headers["set-cookie"] if c.startswith("keyfob-trust=")]
    assert "Max-Age=604800" in trust  # 7 days


def test_totp_window_zero_refuses_a_code_one_step_old(portal: Portal) -> None:
    secret = portal.secrets["window@example.com"]
    browser = Browser()
    browser.password_step(portal.server, "window@example.com")
    now = steady_now()
    status, _, page = browser.post(
        portal.server, reverse("login-code"), {"code": otp.totp(secret, now - 30)}
    )
    # Refused, and still at the code step: the default window of 1 would have taken it.
    assert status == 200 and 'name="code"' in page
    status, _, _ = browser.post(
        portal.server, reverse("login-code"), {"code": otp.totp(secret, now)}
    )
    assert status == 302  # while this step's code still signs in


def test_reauth_seconds_is_how_long_a_sign_in_counts_as_recent(portal: Portal) -> None:
    browser = signed_in(portal, "reauth@example.com")
    password_page = reverse("account:password")
    assert browser.get(portal.server, password_page)[0] == 200  # within 2 seconds
    time.sleep(2.5)
    status, headers, _ = browser.get(portal.server, password_page)
    assert status == 302  # the default, 600 seconds, would still show the page
    assert headers["location"][0].startswith(reverse("account:reauth"))


def test_api_max_body_is_the_largest_body_taken(portal: Portal) -> None:
    made = keyfob(portal.env, "server-token", "create", "web1")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]

    def verify(size: int) -> tuple[int, dict[str, object]]:
        body = {"login": "nobody", "code": "123456", "pad": ""}
        body["pad"] = "x" * (size - len(json.dumps(body).encode()))
        raw = json.dumps(body).encode()
        assert len(raw) == size
        status, _, answer = portal.server.request(
            "POST",
            reverse("api:ssh-verify"),
            body=raw,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return status, json.loads(answer)

    status, answer = verify(513)  # the default, 4096 bytes, would take it
    assert status == 413 and "512 bytes" in json.dumps(answer)
    status, _ = verify(512)
    assert status != 413


FOUR_EYES = """
from keyfob.audit.events import Context
from keyfob.support import flows
from tests.conftest import enrol, make_user
tag = {tag!r}
customer = enrol(make_user(tag + "-customer@example.com")).user
staff = enrol(make_user(tag + "-staff@example.com", is_staff=True)).user
context = Context(address="198.51.100.20")
req = flows.open_request(customer, context, site="http://portal.test")
flows.record_call(req.pk, staff, "confirmed", "", context)
try:
    flows.disable(req.pk, staff, "lost phone", context)
    result = "disabled"
except flows.SupportError as exc:
    result = type(exc).__name__
"""


def test_support_four_eyes_off_lets_the_checker_disable(portal: Portal) -> None:
    assert django_eval(portal.env, FOUR_EYES.format(tag="off")) == "disabled"
    default = {k: v for k, v in portal.env.items() if k != "KEYFOB_SUPPORT_FOUR_EYES"}
    assert django_eval(default, FOUR_EYES.format(tag="on")) == "FourEyes"  # on by default


OLD_EVENTS = """
from datetime import timedelta
from keyfob.core import clock
from keyfob.accounts.models import User
from keyfob.audit.models import SecurityEvent
user = User.objects.create_user("retention@example.com", "correct horse battery staple")
for days in (8, 6):
    SecurityEvent.objects.create(user=user, kind="signin_ok", at=clock.now() - timedelta(days=days))
"""

REMAINING = """
from keyfob.audit.models import SecurityEvent
result = SecurityEvent.objects.filter(user__email="retention@example.com").count()
"""


def test_activity_retention_days_is_what_prune_activity_keeps(portal: Portal) -> None:
    django_eval(portal.env, OLD_EVENTS)
    pruned = keyfob(portal.env, "prune-activity")
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines()[0] == "deleted 1 events older than 7 days"  # default 365
    assert django_eval(portal.env, REMAINING) == 1
