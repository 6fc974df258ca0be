"""System checks that refuse unsafe production settings: ``keyfob check --deploy``.

Each error names the environment variable to change, since that is the only place a
setting comes from. Django's own deploy warnings run too; these are errors, so the
command exits non-zero.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

WEAK_PREFIXES = ("django-insecure-",)
MIN_SECRET_LENGTH = 50
MIN_SECRET_CHARACTERS = 5
# What Keyfob writes in its data directory (the database with its -wal and -shm files).
KEYFOB_FILES = ("keyfob.sqlite3", "keyring", "django-secret-key", "demo-account.txt")


def _weak(secret: str) -> bool:
    return (
        len(secret) < MIN_SECRET_LENGTH
        or len(set(secret)) < MIN_SECRET_CHARACTERS
        or secret.startswith(WEAK_PREFIXES)
    )


@register(Tags.security, deploy=True)
def check_production_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    if settings.DEBUG:
        errors.append(
            Error(
                "KEYFOB_DEBUG is on: error pages would show settings and code to anyone.",
                hint="Unset KEYFOB_DEBUG (or set it to 0) in production.",
                id="keyfob.E001",
            )
        )
    if not getattr(settings, "KEYFOB_SECRET_KEY_FROM_ENV", False):
        errors.append(
            Error(
                "KEYFOB_SECRET_KEY is not set: each machine would sign sessions with its own "
                "generated key.",
                hint="Set KEYFOB_SECRET_KEY to one random value of 50 characters or more, "
                "the same for every process.",
                id="keyfob.E002",
            )
        )
    elif _weak(str(settings.SECRET_KEY)):
        errors.append(
            Error(
                "KEYFOB_SECRET_KEY is weak: it needs 50 characters or more, not all alike.",
                hint='Generate one with: python3 -c "import secrets; '
                'print(secrets.token_urlsafe(50))"',
                id="keyfob.E003",
            )
        )
    hosts = list(settings.ALLOWED_HOSTS)
    if not hosts or any(h in {"*", ".*"} or h.startswith("*") for h in hosts):
        errors.append(
            Error(
                "KEYFOB_ALLOWED_HOSTS is empty or a wildcard: requests for any host name "
                "would be answered.",
                hint="Set KEYFOB_ALLOWED_HOSTS to the portal's host names, e.g. "
                "portal.example.com.",
                id="keyfob.E004",
            )
        )
    if not (settings.SESSION_COOKIE_SECURE and settings.CSRF_COOKIE_SECURE):
        errors.append(
            Error(
                "KEYFOB_HTTPS is off: session and CSRF cookies would travel over plain HTTP, "
                "without HSTS.",
                hint="Serve the portal over HTTPS and set KEYFOB_HTTPS=1.",
                id="keyfob.E005",
            )
        )
    if not settings.KEYFOB_SECRET_KEYS:
        errors.append(
            Warning(
                "KEYFOB_SECRET_KEYS is not set: secrets at rest use a key ring generated in "
                "the data directory, which other machines do not have.",
                hint="Set KEYFOB_SECRET_KEYS to the key ring (see README, Deploying) and "
                "back it up with the database.",
                id="keyfob.W001",
            )
        )
    # Allowed, documented choices that weaken a default: said at each deploy check.
    if settings.KEYFOB_TOTP_WINDOW > 1:
        errors.append(
            Warning(
                f"KEYFOB_TOTP_WINDOW is {settings.KEYFOB_TOTP_WINDOW}: each step more each side "
                "of now is 30 seconds more in which a seen or guessed code works.",
                hint="1 (±30 s) is what a phone's clock needs.",
                id="keyfob.W002",
            )
        )
    if not settings.KEYFOB_SUPPORT_FOUR_EYES:
        errors.append(
            Warning(
                "KEYFOB_SUPPORT_FOUR_EYES is off: one staff member can both check a "
                "customer's identity and turn the customer's 2FA off.",
                hint="Unset KEYFOB_SUPPORT_FOUR_EYES (on) unless support is one person.",
                id="keyfob.W003",
            )
        )
    if not settings.KEYFOB_STAFF_PHISHING_RESISTANT:
        errors.append(
            Warning(
                "KEYFOB_STAFF_PHISHING_RESISTANT is off: staff open the support desk, which "
                "can turn a customer's 2FA off, after a sign-in with a code a phishing page "
                "can relay.",
                hint="Unset KEYFOB_STAFF_PHISHING_RESISTANT (on) and give each staff member a "
                "security key or passkey.",
                id="keyfob.W006",
            )
        )
    if not settings.KEYFOB_SMTP_URL:
        errors.append(
            Warning(
                "KEYFOB_SMTP_URL is not set: notices and e-mailed codes (a new address's "
                "confirmation, support's identity check) are written to the log, not sent.",
                hint="Set KEYFOB_SMTP_URL to the mail server, e.g. "
                "smtp+starttls://user:pass@mail.example.com:587.",
                id="keyfob.W004",
            )
        )
    errors += _oidc_issuer(hosts)
    return errors


def _oidc_issuer(hosts: list[str]) -> list[CheckMessage]:
    """The issuer is what every app checks each ID token's ``iss`` against: over plain
    http, the provider's discovery and keys can be swapped on the way; taken from each
    request, it follows whatever Host a proxy passes on, or differs by host name."""
    issuer = str(settings.KEYFOB_OIDC_ISSUER)
    if issuer.startswith("http://"):
        return [
            Error(
                f"KEYFOB_OIDC_ISSUER is {issuer}: over plain HTTP, the apps that sign people "
                "in through Keyfob would fetch its keys and discovery where anyone on the way "
                "can change them.",
                hint="Set KEYFOB_OIDC_ISSUER to the portal's https:// URL.",
                id="keyfob.E008",
            )
        ]
    if not issuer and (settings.KEYFOB_TRUSTED_PROXIES or len(hosts) > 1):
        return [
            Warning(
                "KEYFOB_OIDC_ISSUER is not set: the OpenID Connect issuer is taken from each "
                "request's host, which a proxy or a second host name changes, and apps refuse "
                "ID tokens whose issuer changed.",
                hint="Set KEYFOB_OIDC_ISSUER to the portal's public URL, "
                "e.g. https://portal.example.com.",
                id="keyfob.W007",
            )
        ]
    return []


@register(Tags.security)
def check_data_dir(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The data directory holds the SQLite database (sessions, password hashes) and the
    generated keys: other users must not reach it. Checked at every command, so `keyfob
    serve` and `keyfob migrate` refuse to start on a directory others can read; Keyfob
    does not change its mode itself (it may be the operator's, e.g. systemd's
    StateDirectory=, 0755 unless StateDirectoryMode= says otherwise)."""
    directory = Path(settings.KEYFOB_DATA_DIR)
    try:
        mode = stat.S_IMODE(directory.stat().st_mode)
    except FileNotFoundError:
        return []  # not used (PostgreSQL and keys from the environment)
    found: list[CheckMessage] = []
    if mode & 0o077:
        found.append(
            Error(
                f"KEYFOB_DATA_DIR {directory} can be reached by other users (mode {mode:04o}): "
                "its database holds sessions and password hashes, and it may hold keys.",
                hint=f"chmod 700 {directory} (with systemd: StateDirectoryMode=0700).",
                id="keyfob.E007",
            )
        )
    try:
        loose = sorted(
            entry.name
            for entry in directory.iterdir()
            if entry.name.startswith(KEYFOB_FILES)
            and entry.is_file()
            and stat.S_IMODE(entry.stat().st_mode) & 0o077
        )
    except OSError:  # not listable by this user: Keyfob will say so when it needs a file
        loose = []
    if loose:
        found.append(
            Warning(
                f"Files in KEYFOB_DATA_DIR {directory} can be read by other users once the "
                f"directory lets them in: {', '.join(loose)}.",
                hint=f"chmod 600 each of them in {directory}; Keyfob now creates its files "
                "mode 0600.",
                id="keyfob.W005",
            )
        )
    return found


@register(Tags.security)
def check_key_ring(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A malformed KEYFOB_SECRET_KEYS is an error at every start, not at the first login."""
    if not settings.KEYFOB_SECRET_KEYS:
        return []
    from keyfob.core import keyring

    try:
        keyring.parse(settings.KEYFOB_SECRET_KEYS)
    except keyring.KeyRingError as exc:
        return [
            Error(
                f"KEYFOB_SECRET_KEYS is not usable: {exc}.",
                hint="Each key is the base64 of 32 random bytes: "
                'python3 -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"',
                id="keyfob.E006",
            )
        ]
    return []
