"""One contract for every single-use secret (DESIGN.md invariant 1), run by each kind.

Every kind (codes, tokens, e-mailed codes, WebAuthn challenges and signature counters, a
staff member's enrolment code for a first key):
used once it is refused (sequential replay); ten submissions of one value at
once, each thread on its own database connection, are accepted exactly once; it reads the
time from the clock seam (``core.clock``). A sign-in factor's failures are also counted by
the account's shared code throttle.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import transaction
from django.http import HttpRequest
from django.test import RequestFactory

from keyfob import otp
from keyfob.accounts import flows as accounts
from keyfob.accounts.models import User
from keyfob.audit import mailer, notices
from keyfob.audit.events import Context
from keyfob.audit.models import NoticeKind, Outbox
from keyfob.core import clock, throttle
from keyfob.core.models import Throttle
from keyfob.otp import KeyfobError
from keyfob.support import flows as support
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor.app_settings import app_settings
from keyfob.twofactor.flows.staff import spend_staff_invite
from keyfob.twofactor.models import Kind, Purpose, RecoveryCode, SecurityKey, StaffKeyInvite
from tests.audit.test_concurrency import in_threads
from tests.conftest import confirmed_now, enrol, make_user
from tests.twofactor.test_webauthn_flows import ORIGIN, add_key, web_request
from tests.webauthn_soft import SoftAuthenticator

pytestmark = pytest.mark.django_db(transaction=True)
T0 = 1_900_000_005.0  # the middle of a 30-second step
CTX = Context(address="192.0.2.1", user_agent="contract")


def account(email: str = "alice@example.com", **fields: Any) -> User:
    return make_user(email, **fields)


class SingleUseContract:
    """What every single-use secret passes. A kind says how to make a value, use it
    (True when accepted; a refusal is False, never an error the flow did not mean) and
    spoil it; a sign-in factor also names its account (``factor_of``)."""

    sign_in_factor: ClassVar[bool] = False

    @pytest.fixture(autouse=True)
    def _frozen(self) -> Any:
        with clock.frozen(T0):
            yield

    def make(self) -> Any:
        raise NotImplementedError

    def use(self, value: Any) -> bool:
        raise NotImplementedError

    def wrong(self, value: Any) -> Any:
        """A value of the right shape that is not the one made."""
        raise NotImplementedError

    def check_clock(self, value: Any) -> None:
        """Show that the kind reads the time from the clock seam."""
        raise NotImplementedError

    def factor_of(self) -> User:
        raise NotImplementedError

    def test_sequential_replay_is_refused(self) -> None:
        value = self.make()
        assert self.use(value) is True
        assert self.use(value) is False

    @pytest.mark.postgres
    def test_ten_at_once_are_accepted_once(self) -> None:
        value = self.make()
        accepted = in_threads(10, lambda _i: self.use(value))
        assert accepted.count(True) == 1, accepted

    def test_a_wrong_value_is_refused_and_the_right_one_still_works(self) -> None:
        value = self.make()
        assert self.use(self.wrong(value)) is False
        assert self.use(value) is True

    def test_failures_count_on_the_shared_throttle(self) -> None:
        value = self.make()
        if not self.sign_in_factor:
            # Not a sign-in factor: its refusals leave the account's code throttle alone.
            self.use(self.wrong(value))
            assert not Throttle.objects.filter(scope="code", consecutive__gt=0).exists()
            return
        key = str(self.factor_of().pk)
        for _ in range(2):
            assert self.use(self.wrong(value)) is False
        assert throttle.consecutive_failures(throttle.CODE, key) == 2
        assert self.use(value) is True
        assert throttle.consecutive_failures(throttle.CODE, key) == 0

    def test_the_clock_seam_is_respected(self) -> None:
        self.check_clock(self.make())


class _CodeOf(SingleUseContract):
    """An authenticator code checked by the portal's (and SSH's) verify."""

    sign_in_factor = True
    kind: ClassVar[str]

    def factor_of(self) -> User:
        return self.user

    def use(self, value: str) -> bool:
        try:
            twofactor.verify_code(self.user, value, CTX)
        except KeyfobError:
            return False
        return True


class TestTotpStep(_CodeOf):
    def make(self) -> str:
        self.user = account()
        self.secret = enrol(self.user).secret
        return otp.totp(self.secret, clock.time())

    def wrong(self, value: str) -> str:
        window = app_settings.totp_window + 1
        near = {otp.totp(self.secret, clock.time() + 30 * i) for i in range(-window, window + 1)}
        return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)

    def check_clock(self, value: str) -> None:
        with clock.frozen(T0 + 300):  # ten steps later: no longer in the window
            assert self.use(value) is False
        assert self.use(value) is True


class TestHotpCounter(_CodeOf):
    def make(self) -> str:
        self.user = account()
        self.secret = enrol(self.user, Kind.HOTP).secret  # confirmed with counter 0
        return otp.hotp(self.secret, 1)

    def wrong(self, value: str) -> str:
        near = {otp.hotp(self.secret, c) for c in range(13)}
        return next(c for c in (f"{n:06d}" for n in range(1_000_000)) if c not in near)

    def check_clock(self, value: str) -> None:
        # A counter knows no time: a year on, the code still works, once.
        with clock.frozen(T0 + 365 * 86400):
            assert self.use(value) is True
            assert self.use(value) is False


class TestRecoveryCode(SingleUseContract):
    sign_in_factor = True

    def factor_of(self) -> User:
        return self.user

    def make(self) -> str:
        self.user = account()
        return enrol(self.user).recovery_codes[0]

    def use(self, value: str) -> bool:
        try:
            twofactor.use_recovery_code(self.user, value, CTX)
        except KeyfobError:
            return False
        return True

    def wrong(self, value: str) -> str:
        return otp.new_recovery_code()

    def check_clock(self, value: str) -> None:
        with clock.frozen(T0 + 1234):
            assert self.use(value) is True
        used = RecoveryCode.objects.get(user=self.user, used_at__isnull=False)
        assert used.used_at is not None and used.used_at.timestamp() == T0 + 1234


class TestTrustedBrowserToken(SingleUseContract):
    def make(self) -> str:
        self.user = account()
        enrol(self.user)
        return twofactor.trust_browser(self.user, CTX)

    def use(self, value: str) -> bool:
        return twofactor.use_trusted_browser(self.user, value, CTX) is not None

    def wrong(self, value: str) -> str:
        return value[:-1] + ("A" if value[-1] != "A" else "B")

    def check_clock(self, value: str) -> None:
        with clock.frozen(T0 + app_settings.trust_days * 86400 + 1):
            assert self.use(value) is False
        assert self.use(value) is True


class TestSupportEmailedCode(SingleUseContract):
    def make(self) -> str:
        self.customer = account(phone="+33123456789")
        enrol(self.customer)
        self.staff = account("sam@support.example", is_staff=True)
        enrol(self.staff)
        req = support.open_request(self.customer, CTX, site="http://testserver", staff=self.staff)
        support.record_call(req.pk, self.staff, "no_answer", "voicemail", CTX)
        check = support.send_code(req.pk, self.staff, CTX)
        self.request_id = req.pk
        outbox = Outbox.objects.get(pk=check.outbox_id)
        return support.unseal_code(outbox.params)

    def use(self, value: str) -> bool:
        try:
            support.check_code(self.request_id, self.staff, value, CTX)
        except support.SupportError:
            return False
        return True

    def wrong(self, value: str) -> str:
        return f"{(int(value) + 1) % 10**8:08d}"

    def check_clock(self, value: str) -> None:
        with clock.frozen(T0 + 86400 * 30):
            assert self.use(value) is False
        assert self.use(value) is True


class TestEmailChangeCode(SingleUseContract):
    def request(self) -> HttpRequest:
        request = RequestFactory().post("/account/email/confirm/", REMOTE_ADDR="192.0.2.1")
        request.user = self.user
        # Starting a change needs the password confirmed in the last minutes.
        request.session = SessionStore()
        confirmed_now(request, self.user)
        return request

    def make(self) -> str:
        self.user = account()
        accounts.start_email_change(self.request(), self.user, "new@example.com")
        row = Outbox.objects.get(kind=NoticeKind.EMAIL_CONFIRM)
        return accounts.unseal_email_code(row.params)

    def use(self, value: str) -> bool:
        try:
            accounts.confirm_email_change(self.request(), self.user, value)
        except KeyfobError:
            return False
        return True

    def wrong(self, value: str) -> str:
        return f"{(int(value) + 1) % 10**8:08d}"

    def check_clock(self, value: str) -> None:
        with clock.frozen(T0 + accounts.EMAIL_CODE_MINUTES * 60 + 1):
            assert self.use(value) is False
        assert self.use(value) is True
        assert User.objects.get(pk=self.user.pk).email == "new@example.com"


class TestPasswordResetCode(SingleUseContract):
    """The code of "I forgot my password": two right codes at once change the password once."""

    def request(self) -> HttpRequest:
        request = RequestFactory().post("/login/reset/code/", REMOTE_ADDR="192.0.2.1")
        request.session = {}  # type: ignore[assignment]
        return request

    def make(self) -> str:
        self.user = account()
        self.n = 0
        accounts.start_password_reset(self.request(), "alice@example.com")
        row = Outbox.objects.get(kind=NoticeKind.PASSWORD_RESET_CODE)
        return accounts.unseal_reset_code(row.params)

    def use(self, value: str) -> bool:
        self.n += 1
        try:
            accounts.finish_password_reset(
                self.request(), "alice@example.com", value, f"new long passphrase {self.n}"
            )
        except KeyfobError:
            return False
        return True

    def wrong(self, value: str) -> str:
        return f"{(int(value) + 1) % 10**8:08d}"

    def check_clock(self, value: str) -> None:
        with clock.frozen(T0 + accounts.RESET_CODE_MINUTES * 60 + 1):
            assert self.use(value) is False
        assert self.use(value) is True


class TestOutboxClaim(SingleUseContract):
    """A notice is claimed by one sender (until its lease runs out)."""

    def make(self) -> int:
        user = account()
        row = notices.queue(user, NoticeKind.PASSWORD_CHANGED, CTX)
        assert row is not None
        return row.pk

    def use(self, value: int) -> bool:
        return mailer._claim(value, f"sender-{id(object())}") is not None

    def wrong(self, value: int) -> int:
        return value + 1000

    def check_clock(self, value: int) -> None:
        Outbox.objects.filter(pk=value).update(next_attempt_at=clock.now() + timedelta(minutes=5))
        assert self.use(value) is False  # not due yet
        with clock.frozen(T0 + 301):
            assert self.use(value) is True


class TestStaffKeyInvite(SingleUseContract):
    """The enrolment code for a staff member's first security key (``keyfob
    staff-key-invite``): spent by the registration that adds the key, in its transaction."""

    def make(self) -> str:
        self.user = account("sam@support.example", is_staff=True)
        enrol(self.user)
        return twofactor.issue_staff_key_invite(self.user.email, CTX)[1]

    def use(self, value: str) -> bool:
        try:
            with transaction.atomic():
                spend_staff_invite(self.user, value)
        except twofactor.StaffInviteRequired:
            return False
        return True

    def wrong(self, value: str) -> str:
        return otp.new_recovery_code()

    def check_clock(self, value: str) -> None:
        with clock.frozen(T0 + twofactor.STAFF_INVITE_MINUTES * 60):
            assert self.use(value) is False
        assert self.use(value) is True
        row = StaffKeyInvite.objects.get(user=self.user)
        assert row.used_at is not None and row.used_at.timestamp() == T0


class _KeyOf(SingleUseContract):
    """A security key's answer, checked by the portal's flows (tests/webauthn_soft.py plays
    the key and the browser)."""

    sign_in_factor = True

    def factor_of(self) -> User:
        return self.user

    def register(self) -> None:
        self.user = account()
        self.soft = SoftAuthenticator()
        add_key(self.user, self.soft, sign_count=5)

    def answer(self, session: dict[str, Any], response: dict[str, Any]) -> bool:
        """Post ``response`` in a request whose session holds ``session`` (each thread its
        own request, as each browser tab would be)."""
        request = web_request(self.user, SessionStore())
        request.session.update(session)
        try:
            twofactor.verify_key(request, Purpose.SIGNIN, json.dumps(response), CTX, self.user)
        except KeyfobError:
            return False
        return True

    def challenge(self) -> tuple[dict[str, Any], dict[str, Any]]:
        request = web_request(self.user)
        options = twofactor.begin(request, Purpose.SIGNIN, self.user)
        return dict(request.session.items()), options


class TestWebAuthnChallenge(_KeyOf):
    """A challenge takes one answer: the same signed answer, posted again or ten times at
    once, signs in once."""

    def make(self) -> tuple[dict[str, Any], dict[str, Any]]:
        self.register()
        session, options = self.challenge()
        return session, self.soft.get(options, ORIGIN)

    def use(self, value: tuple[dict[str, Any], dict[str, Any]]) -> bool:
        return self.answer(*value)

    def wrong(self, value: tuple[dict[str, Any], dict[str, Any]]) -> Any:
        session, response = value
        forged = dict(response, response={**response["response"], "signature": "AAAA"})
        return session, forged

    def check_clock(self, value: tuple[dict[str, Any], dict[str, Any]]) -> None:
        with clock.frozen(T0 + app_settings.webauthn_challenge_seconds + 1):
            assert self.use(value) is False
        assert self.use(value) is True


class TestSignatureCounter(_KeyOf):
    """A key's signature counter moves forward once per value: answers to ten different
    challenges carrying one counter value (what copies of a key would send) sign in once."""

    def make(self) -> int:
        self.register()
        return self.soft.credentials[0].sign_count + 1

    def use(self, value: int) -> bool:
        session, options = self.challenge()
        return self.answer(session, self.soft.get(options, ORIGIN, sign_count=value))

    def wrong(self, value: int) -> int:
        return value - 1  # not past the registered count: refused as a copy

    def check_clock(self, value: int) -> None:
        assert self.use(value) is True
        key = SecurityKey.objects.get(user=self.user)
        assert key.last_used_at == clock.now() and key.sign_count == value
