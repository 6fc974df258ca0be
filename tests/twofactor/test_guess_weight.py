"""Issue 22: several authenticator apps do not widen each guess. A code is compared with
every app of the account; a wrong one counts as many of the day's throttle failures as one
time-based app's worth of values it was compared with (verify.guess_weight), so a guesser
tries no more values a day than against one time-based app, whatever the apps.

Seen failing on the code before: ten counter-based apps let 100 guesses a day through, each
compared with 110 values (11,000 values, about 1 % odds a day instead of 0.03 %)."""

from __future__ import annotations

import inspect
import math

import pytest

from keyfob import otp
from keyfob.accounts.models import User
from keyfob.audit.events import Context
from keyfob.core import clock, throttle
from keyfob.otp import InvalidCode, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.flows.verify import HOTP_LOOK_AHEAD, guess_weight
from keyfob.twofactor.models import Authenticator, Kind
from tests.conftest import T0, Enrolled, enrol, make_user

pytestmark = pytest.mark.django_db
CTX = Context()
DAY = 86_400.0


def values_per_guess(user: User) -> int:
    """How many values one guess is compared with, from the apps themselves."""
    apps = Authenticator.objects.filter(user=user, confirmed_at__isnull=False)
    return sum(HOTP_LOOK_AHEAD + 1 if a.kind == Kind.HOTP else 3 for a in apps)


def never_right(apps: list[Enrolled]) -> str:
    """A code none of the counter-based apps accepts now (their counters do not move on a
    failure)."""
    taken = {
        otp.hotp(app.secret, counter) for app in apps for counter in range(0, HOTP_LOOK_AHEAD + 40)
    }
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in taken)


def guesses_in_a_day(user: User, code: str) -> int:
    """Wrong guesses the account takes in 24 hours, each sent as soon as it is allowed."""
    at, guesses = T0, 0
    while at < T0 + DAY:
        with clock.frozen(at):
            try:
                flows.verify_code(user, code, CTX)
            except Throttled as exc:
                at += max(exc.retry_after, 1.0)
                continue
            except InvalidCode:
                guesses += 1
        at += 1.0
    return guesses


def test_ten_counter_based_apps_give_no_more_values_a_day_than_one_time_based_app() -> None:
    alice = make_user("alice@example.com")
    apps = [enrol(alice, "hotp", name=f"Token {i}") for i in range(10)]
    guesses = guesses_in_a_day(alice, never_right(apps))
    tried = guesses * values_per_guess(alice)
    one_totp_app = throttle.CODE.daily * 3
    assert tried <= one_totp_app, (guesses, tried)
    assert guesses == 2  # 110 values a guess, 37 failures of 100


def test_one_time_based_app_keeps_its_hundred_guesses_a_day(user_with_totp: Enrolled) -> None:
    user = user_with_totp.user
    # A code no step of the day (and a minute either side) gives.
    day = {user_with_totp.code(T0 + s) for s in range(-60, int(DAY) + 60, 30)}
    code = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in day)
    assert guesses_in_a_day(user, code) == throttle.CODE.daily


def test_one_typo_waits_no_longer_with_more_apps(frozen_time: float) -> None:
    alice = make_user("alice@example.com")
    apps = [enrol(alice, "hotp", name=f"Token {i}") for i in range(10)]
    with pytest.raises(InvalidCode):
        flows.verify_code(alice, never_right(apps), CTX)
    assert throttle.consecutive_failures(throttle.CODE, str(alice.pk)) == 1
    # The right code of any app is taken at once.
    flows.verify_code(alice, otp.hotp(apps[3].secret, 1), CTX)


@pytest.mark.parametrize(
    ("kinds", "weight"),
    [
        (["totp"], 1),
        (["hotp"], 4),
        (["totp", "totp"], 2),
        (["hotp"] * 10, 37),
        (["totp"] * 10, 10),
        (["totp", "hotp"], 5),
    ],
)
def test_the_weight_is_the_values_compared_over_one_time_based_apps(
    kinds: list[str], weight: int
) -> None:
    apps = [Authenticator(kind=kind, digits=6) for kind in kinds]
    assert guess_weight(apps, "123456") == weight
    values = sum(11 if kind == "hotp" else 3 for kind in kinds)
    assert weight == math.ceil(values / 3)
    # Apps whose codes have another length cannot match: not counted.
    assert guess_weight([*apps, Authenticator(kind="hotp", digits=8)], "123456") == weight


def test_the_weight_follows_the_totp_window(settings: pytest.FixtureRequest) -> None:
    settings.KEYFOB_TOTP_WINDOW = 2  # type: ignore[attr-defined]
    apps = [Authenticator(kind="hotp", digits=6)] * 10
    assert guess_weight(apps, "123456") == math.ceil(110 / 5)


def test_the_look_ahead_is_the_one_verification_uses() -> None:
    default = inspect.signature(otp.verify_hotp).parameters["look_ahead"].default
    assert default == HOTP_LOOK_AHEAD
