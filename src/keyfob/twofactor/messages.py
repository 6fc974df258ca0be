"""What Keyfob's two-factor pages tell a person whose code, recovery code, security key or
passkey was refused: one table per surface, looked up by the error's ``code``
(KeyfobError.code)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from keyfob.accounts.text import wait_text
from keyfob.otp import CodeReused, InvalidCode, KeyfobError, Throttled
from keyfob.twofactor import flows
from keyfob.twofactor.app_settings import app_settings

CODE_ERRORS = (InvalidCode, CodeReused, Throttled, flows.NotEnrolled)


def _wait(exc: KeyfobError) -> str:
    retry_after = exc.retry_after if isinstance(exc, Throttled) else 0
    return _("Too many failed attempts. Try again in %(wait)s.") % {"wait": wait_text(retry_after)}


def _later_code_used(exc: KeyfobError) -> str:
    seconds = exc.seconds if isinstance(exc, flows.LaterCodeUsed) else 30
    return ngettext(
        "This code is right, but a code from later was already used (a phone whose clock is "
        "fast shows it early). Wait %(n)d second for a new code, or use a recovery code.",
        "This code is right, but a code from later was already used (a phone whose clock is "
        "fast shows it early). Wait %(n)d seconds for a new code, or use a recovery code.",
        seconds,
    ) % {"n": seconds}


def _clock_drift(exc: KeyfobError) -> str:
    seconds = exc.seconds if isinstance(exc, flows.ClockDrift) else 0
    minutes = max(1, round(abs(seconds) / 60))
    if seconds < 0:
        text = ngettext(
            "Your phone's clock seems to be about %(n)d minute slow.",
            "Your phone's clock seems to be about %(n)d minutes slow.",
            minutes,
        )
        advice = _("Set its date and time to update automatically, then try a new code.")
    else:
        text = ngettext(
            "Your phone's clock seems to be about %(n)d minute fast.",
            "Your phone's clock seems to be about %(n)d minutes fast.",
            minutes,
        )
        # The code it showed is spent, with every code before it (else this answer would
        # tell a guesser which code to type later): say how long until one works again.
        advice = ngettext(
            "Set its date and time to update automatically; its codes work again in about "
            "%(n)d minute.",
            "Set its date and time to update automatically; its codes work again in about "
            "%(n)d minutes.",
            minutes,
        ) % {"n": minutes}
    return (text % {"n": minutes}) + " " + advice


# What to tell a person whose code was refused, and what to do next, by the error's code
# (KeyfobError.code); a code not listed reads as a wrong code.
CODE_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    "throttled": _wait,
    "code_reused": lambda exc: _(
        "This code has already been used. Wait for the next code in your app."
    ),
    "later_code_used": _later_code_used,
    "clock_drift": _clock_drift,
    "not_enrolled": lambda exc: _("Two-factor authentication is not on for this account."),
    "invalid_code": lambda exc: _(
        "This code is not right. Check the code for this account in your app."
    ),
}


def _not_a_recovery_code(exc: KeyfobError) -> str:
    return _("This is not one of your recovery codes.")


# The same for a recovery code typed instead.
RECOVERY_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    **CODE_MESSAGES,
    "code_reused": lambda exc: _("This recovery code has already been used. Each one works once."),
    "later_code_used": _not_a_recovery_code,
    "clock_drift": _not_a_recovery_code,
    "invalid_code": _not_a_recovery_code,
}


def code_error(
    exc: KeyfobError, table: dict[str, Callable[[KeyfobError], str]] = CODE_MESSAGES
) -> str:
    """What to tell a person whose code (or, with RECOVERY_MESSAGES, recovery code) was
    refused."""
    return table.get(exc.code, table["invalid_code"])(exc)


def _try_key_again(exc: KeyfobError) -> str:
    return _("That took too long, or the page was sent twice. Press the button to try again.")


def _wrong_host(exc: KeyfobError) -> str:
    return _(
        "Security keys cannot be used at this address of the site. Open the site at its "
        "usual address."
    )


# What to tell a person whose security key or passkey was refused (at sign-in or at
# "Confirm it is you"), by the error's code; a code not listed reads as a refused key.
KEY_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    "throttled": _wait,
    "key_refused": lambda exc: _(
        "This security key was not accepted. Use a security key or passkey you added to "
        "this account, or another way below."
    ),
    "key_cloned": lambda exc: _(
        "This security key was refused: its answer shows it may have been copied. We sent "
        "you an e-mail about it. Use another way below, then remove the key from Account → "
        "Security."
    ),
    "challenge_expired": _try_key_again,
    "code_reused": _try_key_again,
    "not_enrolled": lambda exc: _("This account has no security key. Use another way below."),
    "wrong_host": _wrong_host,
}

# The same when adding a key.
ADD_KEY_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    "key_refused": lambda exc: _(
        "The answer from your security key could not be checked, or this key is already "
        "added. Press the button to try again, or use another key."
    ),
    "challenge_expired": _try_key_again,
    "wrong_host": _wrong_host,
    "staff_invite": lambda exc: _(
        "This enrolment code is not right, was used already or has expired. Ask an operator "
        "for a new one."
    ),
    "too_many_keys": lambda exc: (
        _("An account has at most %(n)d security keys. Remove one you no longer use first.")
        % {"n": app_settings.max_security_keys}
    ),
}


# What each ceremony may refuse with, to be told with the tables above (anything else, such
# as ReauthRequired, goes on to its own handler).
KEY_ERRORS = (
    flows.KeyRefused,
    flows.ChallengeExpired,
    flows.WrongHost,
    flows.NotEnrolled,
    CodeReused,
    Throttled,
)
ADD_KEY_ERRORS = (
    flows.KeyRefused,
    flows.ChallengeExpired,
    flows.WrongHost,
    flows.TooManyKeys,
    flows.StaffInviteRequired,
)


def key_error(exc: KeyfobError, table: dict[str, Callable[[KeyfobError], str]]) -> str:
    """What to tell a person whose security key was refused (``table``: KEY_MESSAGES or
    ADD_KEY_MESSAGES)."""
    return table.get(exc.code, table["key_refused"])(exc)


def _key_not_alone(exc: KeyfobError) -> str:
    return _(
        "This key cannot sign you in on its own. Sign in with your e-mail address and "
        "password, then use the key when asked."
    )


# What a sign-in with a passkey is told, by the error's code (KeyfobError.code); a code not
# listed reads like a refused key. Whether a key belongs to an account is never said: an
# unknown key, another site's, one whose signature or user handle is wrong, one that did not
# verify its user and one that may not sign in without the password (NotPasswordless) all
# read the same. Only a refusal made after the key's signature was checked (a copied key,
# its counter just used) names what happened, to the key's holder; and the account's
# throttle says to wait, as at the code step, since hiding it would send a locked-out
# holder to a password step that refuses the key too.
PASSKEY_MESSAGES: dict[str, Callable[[KeyfobError], str]] = {
    "key_refused": _key_not_alone,
    "not_passwordless": _key_not_alone,
    "not_enrolled": _key_not_alone,
    "no_credential": lambda exc: _(
        "Your browser sent no passkey. Try again, or sign in with your password."
    ),
    "challenge_expired": lambda exc: _("Your passkey sign-in took too long. Please try again."),
    "code_reused": lambda exc: _("This answer from your key was already used. Please try again."),
    "key_cloned": lambda exc: _(
        "This key was refused: it may have been copied. Sign in with your password, then "
        "check your Security page. We have e-mailed you about it."
    ),
    "throttled": CODE_MESSAGES["throttled"],
    "wrong_host": lambda exc: _(
        "Passkeys cannot be used at this address. Sign in with your password."
    ),
}


def passkey_error(exc: KeyfobError) -> str:
    """What to tell a person whose passkey did not sign them in."""
    return PASSKEY_MESSAGES.get(exc.code, _key_not_alone)(exc)


@dataclass(frozen=True)
class FamilyTexts:
    """What the rename and remove pages say of an app or of a key."""

    rename_heading: str
    renamed: str
    removed: str  # %(name)s


def family_texts(family: flows.Family) -> FamilyTexts:
    """:class:`FamilyTexts` of ``family``, in the active language."""
    if family == flows.Family.KEY:
        return FamilyTexts(
            rename_heading=_("Rename a security key"),
            renamed=_("The security key is renamed."),
            removed=_("The security key “%(name)s” is removed."),
        )
    return FamilyTexts(
        rename_heading=_("Rename an authenticator app"),
        renamed=_("The authenticator app is renamed."),
        removed=_("The authenticator app “%(name)s” is removed."),
    )
