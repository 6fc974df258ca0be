"""Each surface finds its text by the error's code: every code it can meet is in its table."""

from __future__ import annotations

import pytest

from keyfob import otp
from keyfob.accounts import errors as account_errors
from keyfob.accounts import messages as account_messages
from keyfob.otp import errors
from keyfob.ssh import gafile, messages, serverconfig
from keyfob.support import flows as support
from keyfob.support import views as support_views
from keyfob.twofactor import flows as twofactor
from keyfob.twofactor import messages as twofactor_views


def _subclasses(base: type) -> list[type]:
    found = []
    for cls in base.__subclasses__():
        found += [cls, *_subclasses(cls)]
    return found


def test_error_codes_are_distinct_within_a_family() -> None:
    bases = (
        errors.KeyfobError,
        support.SupportError,
        gafile.GAFileError,
        account_errors.AccountError,
    )
    for base in bases:
        family = [cls for cls in _subclasses(base) if cls.__module__ == base.__module__]
        codes = [cls.code for cls in family]
        assert len(codes) == len(set(codes)), codes
        assert base.code not in codes


def test_the_portal_has_a_text_for_every_refused_code() -> None:
    reasons = [
        otp.InvalidCode(),
        otp.CodeReused(),
        otp.Throttled(90),
        twofactor.NotEnrolled(),
        twofactor.ClockDrift(-8, 30),
    ]
    texts = {twofactor_views.code_error(exc) for exc in reasons}
    assert len(texts) == len(reasons)
    for exc in reasons:
        assert exc.code in twofactor_views.CODE_MESSAGES
        assert exc.code in twofactor_views.RECOVERY_MESSAGES
    assert "1 minute" in twofactor_views.code_error(otp.Throttled(60))
    assert "4 minutes slow" in twofactor_views.code_error(twofactor.ClockDrift(-8, 30))


@pytest.mark.parametrize("cls", _subclasses(support.SupportError), ids=lambda c: c.__name__)
def test_the_support_desk_has_a_text_for_every_refusal_a_step_raises(cls: type) -> None:
    if cls in (support.NotFound, support.BadCancelLink):  # answered 404, not with a text
        return
    assert cls.code in support_views.REFUSALS


@pytest.mark.parametrize("cls", _subclasses(gafile.GAFileError), ids=lambda c: c.__name__)
def test_keyfob_ssh_has_a_text_for_every_file_problem(cls: type) -> None:
    assert cls.code in messages.MESSAGES
    missing = gafile.ReadFailed("/x", FileNotFoundError(2, "missing"))
    assert messages.file_failure(missing).message.startswith("/x does not exist")


@pytest.mark.parametrize(
    "error",
    [
        serverconfig.BadMethods("x"),
        serverconfig.BadCentral("x"),
        serverconfig.SshdMissing("x"),
        serverconfig.SshdRejected("bad line 3"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_keyfob_ssh_has_a_text_for_every_server_config_problem(
    error: serverconfig.ServerConfigError,
) -> None:
    file_codes = {cls.code for cls in _subclasses(gafile.GAFileError)}
    assert error.code in messages.MESSAGES and error.code not in file_codes
    failure = messages.server_failure(error, methods="m", url="u", sshd="/s")
    assert (
        failure.code in (messages.EXIT_USAGE, messages.EXIT_SYSTEM) and "{" not in failure.message
    )


@pytest.mark.parametrize(
    "exc",
    [
        *(
            cls()
            for cls in _subclasses(account_errors.AccountError)
            if cls.__init__ is Exception.__init__
        ),
        account_errors.WrongEmailCode(1),
        account_errors.WrongResetCode(3),
        otp.Throttled(90),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_account_pages_have_a_text_for_every_refusal(exc: otp.KeyfobError) -> None:
    if exc.code == "invalid_credentials":  # the sign-in page's, worded there
        return
    assert exc.code in account_messages.REFUSALS
    assert account_messages.refusal(exc) != account_messages.refusal(otp.KeyfobError())
    assert "{" not in account_messages.refusal(exc) and "%(" not in account_messages.refusal(exc)


def test_the_account_pages_say_how_many_tries_are_left() -> None:
    assert account_messages.refusal(account_errors.WrongEmailCode(1)).endswith("1 try left.")
    assert account_messages.refusal(account_errors.WrongResetCode(3)).endswith("3 tries left.")
    assert "2 minutes" in account_messages.refusal(otp.Throttled(90))
