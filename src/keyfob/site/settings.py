"""Keyfob's Django settings, read from the environment only (``KEYFOB_*``).

Every variable is read here, once, through ``env`` below: typed, checked, and recorded in
``KEYFOB_VARIABLES`` (the README's settings table lists exactly that set). A bad value
raises ``SettingError`` with one line naming the variable and what it accepts; the
``keyfob`` command and the WSGI module print that line and stop.

The defaults are the embedded, single-machine ones: SQLite and generated keys in
``KEYFOB_DATA_DIR`` (default ``./var``). Anything that weakens a default is named here.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

_T = TypeVar("_T")


class SettingError(ImproperlyConfigured):
    """A ``KEYFOB_*`` variable holds a value Keyfob cannot use; the message is one line."""


class Environment:
    """Typed readers of ``KEYFOB_*`` variables that remember every name they read.

    An unset or empty variable takes the default. A value that does not parse raises
    ``SettingError`` naming the variable and what it accepts; a secret is never echoed.
    """

    FLAGS = {
        "1": True, "true": True, "yes": True, "on": True,
        "0": False, "false": False, "no": False, "off": False,
    }  # fmt: skip

    def __init__(self, source: Mapping[str, str]) -> None:
        self.source = source
        self.read: set[str] = set()

    def raw(self, name: str) -> str | None:
        """The stripped value, or None when unset; records ``name`` as read."""
        self.read.add(name)
        value = self.source.get(name)
        return None if value is None else value.strip()

    def parsed(
        self,
        name: str,
        default: _T,
        parse: Callable[[str], _T],
        accepts: str,
        *,
        secret: bool = False,
    ) -> _T:
        """What ``parse`` makes of the value (it raises ValueError when it cannot)."""
        value = self.raw(name)
        if not value:
            return default
        try:
            return parse(value)
        except ValueError:
            shown = "a value not shown here (it may hold a password)" if secret else repr(value)
            raise SettingError(f"{name}: expected {accepts}, got {shown}") from None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def flag(self, name: str, default: bool) -> bool:
        # Only clear words: "maybe" or "enabled" stops the start instead of meaning "off".
        def parse(value: str) -> bool:
            return self.FLAGS[value.lower()] if value.lower() in self.FLAGS else _invalid(value)

        return self.parsed(name, default, parse, "one of 1/0, true/false, yes/no, on/off")

    def number(self, name: str, default: int, low: int, high: int, unit: str) -> int:
        def parse(value: str) -> int:
            # ASCII digits only: int() also takes "١٢", "+5" and "1_000".
            if value.isascii() and value.isdigit() and low <= int(value) <= high:
                return int(value)
            return _invalid(value)

        return self.parsed(name, default, parse, f"a whole number of {unit} from {low} to {high}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        def parse(value: str) -> str:
            return value.lower() if value.lower() in choices else _invalid(value)

        return self.parsed(name, default, parse, "one of " + ", ".join(choices))

    def items(
        self, name: str, default: str, check: Callable[[str], object], accepts: str
    ) -> list[str]:
        """Comma-separated items, each passed to ``check``. Unlike elsewhere, an empty value
        means no items (so ``check --deploy`` can name an empty KEYFOB_ALLOWED_HOSTS)."""
        value = self.raw(name)

        def parse(text: str) -> list[str]:
            found = [item.strip() for item in text.split(",") if item.strip()]
            for item in found:
                check(item)
            return found

        if value == "":
            return []
        return self.parsed(name, parse(default), parse, accepts)


def _invalid(value: str) -> NoReturn:
    raise ValueError(value)


def _url(*schemes: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        return value if parts.scheme in schemes else _invalid(value)

    return parse


def _right(value: str) -> str:
    """A right's name as the provider's apps read it in the grants claim: a-z, 0-9, _ -."""
    if not (1 <= len(value) <= 32) or not all(
        c in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in value
    ):
        _invalid(value)
    return value


def _email(value: str) -> str:
    try:
        validate_email(value)
    except ValidationError:
        _invalid(value)
    return value


def _network(value: str) -> str:
    ipaddress.ip_network(value, strict=False)  # ValueError if it is not one
    return value


env = Environment(os.environ)
BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.text("KEYFOB_DATA_DIR", "var")).resolve()


def _rp_id(value: str) -> str:
    """A relying party id: a DNS name (the site's host or a parent domain of it), never an
    address or a URL."""
    name = value.lower().rstrip(".")
    labels = name.split(".")
    if (
        name.isascii()
        and all(0 < len(label) <= 63 for label in labels)
        and all(label.replace("-", "").isalnum() for label in labels)
        and not all(label.isdigit() for label in labels)
    ):
        return name
    return _invalid(value)


def _first_dns_name(hosts: list[str]) -> str:
    """The default relying party id: the first allowed host that is a DNS name (an address
    cannot be one), a leading dot (subdomains allowed) dropped."""
    for host in hosts:
        try:
            return _rp_id(host.lstrip("."))
        except ValueError:
            continue
    return "localhost"


def _data_dir() -> Path:
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    return DATA_DIR


def _generated_secret(filename: str, nbytes: int = 48) -> str:
    """Read a secret from the data directory, creating it (mode 0600) on first use."""
    path = _data_dir() / filename
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(nbytes)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its value
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def _database(url: str, test_name: str) -> dict[str, object]:
    if not url:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(_data_dir() / "keyfob.sqlite3"),
            # Writers wait for each other instead of failing at once.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                # WAL: readers never wait for the writer, and a commit is one fsync of the
                # log. synchronous stays FULL so a consumed code survives a power cut.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
            },
            # Kept open between requests: closing the last connection to a WAL database
            # checkpoints it and deletes the log, which would cost every request fsyncs.
            "CONN_MAX_AGE": 60,
            "TEST": {"NAME": str(_data_dir() / "test.sqlite3")},
        }
    parts = urlsplit(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "keyfob",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        # Parameters travel apart from the SQL, so psycopg prepares a statement the fifth
        # time a connection runs it: a code check's few statements skip parsing and
        # planning from then on.
        "OPTIONS": {"server_side_binding": True, "prepare_threshold": 5},
        # A distinct name lets two test runs share one server.
        "TEST": {"NAME": test_name},
    }


DEBUG = env.flag("KEYFOB_DEBUG", False)
SECRET_KEY = env.text("KEYFOB_SECRET_KEY", "") or _generated_secret("django-secret-key")
# Whether the secret came from the environment (the deploy checks insist on it).
KEYFOB_SECRET_KEY_FROM_ENV = bool(env.raw("KEYFOB_SECRET_KEY"))
ALLOWED_HOSTS = env.items(
    "KEYFOB_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]", str, "host names, comma-separated"
)
HTTPS = env.flag("KEYFOB_HTTPS", False)
# Read whether or not HTTPS is on, so a bad value is refused either way.
_SSL_REDIRECT = env.flag("KEYFOB_SSL_REDIRECT", True)

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "keyfob.site",
    "keyfob.core",
    "keyfob.accounts",
    "keyfob.audit",
    "keyfob.twofactor",
    "keyfob.teams",
    "keyfob.support",
    "keyfob.api",
    # Before the library: its templates (oauth2_provider/logout_confirm.html) are Keyfob's.
    "keyfob.oidc",
    "oauth2_provider",
]

MIDDLEWARE = [
    # First: it times and logs every request, and gives it the id other log lines carry.
    "keyfob.site.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # /api/ answers from here: the rest is the portal's stack.
    "keyfob.site.middleware.ApiMiddleware",
    # Before WhiteNoise so static files carry the policy too.
    "keyfob.site.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "keyfob.accounts.middleware.AccountPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After auth and messages: it signs out an expired session and says why.
    "keyfob.site.middleware.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "keyfob.site.middleware.NoStoreMiddleware",
]

ROOT_URLCONF = "keyfob.site.urls"
WSGI_APPLICATION = "keyfob.site.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "keyfob.site.context_processors.site",
            ],
        },
    }
]

DATABASES = {
    "default": _database(
        env.parsed(
            "KEYFOB_DATABASE_URL",
            "",
            _url("postgres", "postgresql"),
            "a postgresql://user:pass@host:5432/db URL",
            secret=True,
        ),
        # Read with SQLite too, so the variable is known (and checked) whatever the database.
        test_name=env.text("KEYFOB_TEST_DB_NAME", "keyfob_test"),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "account:security"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_ENGINE = "django.contrib.sessions.backends.db"
# The session ends 12 hours after sign-in at most, and after 30 minutes without a request
# (SessionLifetimeMiddleware); the cookie itself expires with the absolute limit.
KEYFOB_SESSION_MAX_AGE = env.number("KEYFOB_SESSION_MAX_AGE", 12 * 3600, 60, 30 * 86400, "seconds")
KEYFOB_SESSION_IDLE = env.number("KEYFOB_SESSION_IDLE", 30 * 60, 60, 30 * 86400, "seconds")
SESSION_COOKIE_AGE = KEYFOB_SESSION_MAX_AGE
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
CSRF_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = HTTPS
LANGUAGE_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "__Host-keyfob-session" if HTTPS else "keyfob-session"
CSRF_COOKIE_NAME = "__Host-keyfob-csrf" if HTTPS else "keyfob-csrf"
# Keyfob's own page for a form sent without its token (Django's mentions DEBUG).
CSRF_FAILURE_VIEW = "keyfob.site.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS:
    SECURE_SSL_REDIRECT = _SSL_REDIRECT
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # A load balancer probes the app over plain HTTP; a redirect would read as "down".
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# HSTS covers the portal's own host only: includeSubDomains and preload would force HTTPS
# on every other name under the provider's domain, a choice for the operator's front proxy.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
# One way to write a date on every page, in each language (see keyfob.site.formats).
FORMAT_MODULE_PATH = ["keyfob.site.formats"]
LOCALE_PATHS = [BASE_DIR / "site" / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "/static/"
STATIC_ROOT = env.text("KEYFOB_STATIC_ROOT", "") or None
# `keyfob collectstatic` runs under a umask of 077 (keyfob.site.cli): the proxy that serves
# the stylesheet is another user, so the copies are made readable on purpose.
FILE_UPLOAD_PERMISSIONS = 0o644
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o755
# Serve from the app directories directly so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
KEYFOB_MAIL_FROM = env.text("KEYFOB_MAIL_FROM", "Keyfob <keyfob@localhost>")
DEFAULT_FROM_EMAIL = KEYFOB_MAIL_FROM

# KEYFOB_LOG_FORMAT=json: one JSON object per line (time, level, request id, account id,
# event), request lines included; see keyfob.site.logging for what a line may carry.
KEYFOB_LOG_FORMAT = env.choice("KEYFOB_LOG_FORMAT", "text", ("text", "json"))
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
KEYFOB_LOG_LEVEL = env.choice(
    "KEYFOB_LOG_LEVEL", "info" if KEYFOB_LOG_FORMAT == "json" else "warning", _LOG_LEVELS
).upper()
_JSON_LOGS = KEYFOB_LOG_FORMAT == "json"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "keyfob.site.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "keyfob.site.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request"],
            **({"formatter": "json"} if _JSON_LOGS else {}),
        }
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"keyfob": {"level": KEYFOB_LOG_LEVEL}},
}

# Keyfob's own settings; each app reads them through its app_settings object.
KEYFOB_SITE_NAME = env.text("KEYFOB_SITE_NAME", "Keyfob")
KEYFOB_DATA_DIR = DATA_DIR
KEYFOB_SECRET_KEYS = env.text("KEYFOB_SECRET_KEYS", "")  # checks.check_key_ring parses it
# Outgoing mail (keyfob.audit.app_settings reads these): smtp://, smtps:// or
# smtp+starttls://user:pass@host:port; empty prints notices instead of sending them.
KEYFOB_SMTP_URL = env.parsed(
    "KEYFOB_SMTP_URL",
    "",
    _url("smtp", "smtps", "smtp+starttls"),
    "an smtp://, smtps:// or smtp+starttls://user:pass@host:port URL",
    secret=True,
)
KEYFOB_MAIL_MAX_ATTEMPTS = env.number("KEYFOB_MAIL_MAX_ATTEMPTS", 55, 1, 1000, "attempts")
# How often each worker's sender looks for due notices: one small query each time.
KEYFOB_MAIL_INTERVAL_SECONDS = env.number("KEYFOB_MAIL_INTERVAL_SECONDS", 5, 1, 3600, "seconds")
# Sent and failed notices name an address, an IP address and a browser: kept this long.
KEYFOB_OUTBOX_RETENTION_DAYS = env.number("KEYFOB_OUTBOX_RETENTION_DAYS", 30, 1, 3650, "days")
# Reverse proxies whose X-Forwarded-For is believed: addresses or CIDRs, comma-separated.
KEYFOB_TRUSTED_PROXIES = env.items(
    "KEYFOB_TRUSTED_PROXIES", "", _network, "IP addresses or CIDRs, comma-separated"
)
# /metrics answers only with "Authorization: Bearer <token>"; without a token it is off (404).
KEYFOB_METRICS_TOKEN = env.text("KEYFOB_METRICS_TOKEN", "")
# Security events (sign-ins, addresses, browsers): what `keyfob prune-activity` keeps.
KEYFOB_ACTIVITY_RETENTION_DAYS = env.number("KEYFOB_ACTIVITY_RETENTION_DAYS", 365, 1, 36500, "days")

# Two-factor: ±1 step (30 s) is what a phone's clock needs; each step more widens what a
# guessed or overheard code can match. 10 is the most keyfob.otp accepts.
KEYFOB_TOTP_WINDOW = env.number("KEYFOB_TOTP_WINDOW", 1, 0, 10, "time steps")
KEYFOB_TRUST_DAYS = env.number("KEYFOB_TRUST_DAYS", 30, 1, 365, "days")
# How recent the password and code must be for a sensitive change; over an hour is no
# longer "recent".
KEYFOB_REAUTH_SECONDS = env.number("KEYFOB_REAUTH_SECONDS", 600, 1, 3600, "seconds")
KEYFOB_SUPPORT_EMAIL = env.parsed(
    "KEYFOB_SUPPORT_EMAIL", "support@example.com", _email, "an e-mail address"
)
# Off lets one staff member both check a customer's identity and turn 2FA off.
KEYFOB_SUPPORT_FOUR_EYES = env.flag("KEYFOB_SUPPORT_FOUR_EYES", True)
# Security keys and passkeys are bound to this domain for good: a key registered under one
# relying party id never signs in under another.
KEYFOB_WEBAUTHN_RP_ID = env.parsed(
    "KEYFOB_WEBAUTHN_RP_ID",
    _first_dns_name(ALLOWED_HOSTS),
    _rp_id,
    "a DNS name: the portal's host or a parent domain of it",
)
if env.raw("KEYFOB_WEBAUTHN_RP_ID") and not any(
    host.lstrip(".") == KEYFOB_WEBAUTHN_RP_ID
    or host.lstrip(".").endswith("." + KEYFOB_WEBAUTHN_RP_ID)
    for host in ALLOWED_HOSTS
):
    raise SettingError(
        f"KEYFOB_WEBAUTHN_RP_ID: expected one of KEYFOB_ALLOWED_HOSTS or a parent domain of "
        f"one, got {KEYFOB_WEBAUTHN_RP_ID!r}"
    )
# Off lets staff open the support desk after a code sign-in, which can be phished.
KEYFOB_STAFF_PHISHING_RESISTANT = env.flag("KEYFOB_STAFF_PHISHING_RESISTANT", True)
KEYFOB_API_MAX_BODY = env.number("KEYFOB_API_MAX_BODY", 4096, 256, 1048576, "bytes")
# The lifetime of the SSH certificates Keyfob signs (issue 26).
KEYFOB_SSH_CERT_HOURS = env.number("KEYFOB_SSH_CERT_HOURS", 8, 1, 24, "hours")
# On: a certificate holds only from the address that asked for it (source-address).
KEYFOB_SSH_CERT_SOURCE_ADDRESS = env.flag("KEYFOB_SSH_CERT_SOURCE_ADDRESS", False)

# OpenID Connect provider (keyfob.oidc, on django-oauth-toolkit). The issuer is the portal's
# public https URL as the provider's apps reach it; empty takes it from each request's host
# (fine on one host name; set it behind a proxy or with several names).
KEYFOB_OIDC_ISSUER = env.parsed(
    "KEYFOB_OIDC_ISSUER", "", _url("https", "http"), "the portal's public URL, https://host"
).rstrip("/")
KEYFOB_OIDC_ACCESS_TOKEN_SECONDS = env.number(
    "KEYFOB_OIDC_ACCESS_TOKEN_SECONDS", 600, 60, 86400, "seconds"
)
# An app's refresh token ends with the session it came from, or after this many days.
KEYFOB_OIDC_REFRESH_TOKEN_DAYS = env.number("KEYFOB_OIDC_REFRESH_TOKEN_DAYS", 30, 1, 365, "days")
# Teams (keyfob.teams): the rights an owner can grant, as the provider's apps name them
# (the grants claim carries them). Named once; an owner chooses among these.
KEYFOB_GRANT_RIGHTS = env.items(
    "KEYFOB_GRANT_RIGHTS",
    "technical,billing,dns,mail",
    _right,
    "right names, comma-separated (a-z, 0-9, _ and -, up to 32 characters each)",
)
if not KEYFOB_GRANT_RIGHTS or len(set(KEYFOB_GRANT_RIGHTS)) != len(KEYFOB_GRANT_RIGHTS):
    raise SettingError("KEYFOB_GRANT_RIGHTS: expected one or more distinct right names")

OAUTH2_PROVIDER_APPLICATION_MODEL = "oidc.Client"
# The library's own models for the rest (named, as Django's swappable models must be).
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_DEVICE_GRANT_MODEL = "oauth2_provider.DeviceGrant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": KEYFOB_OIDC_ISSUER,
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": True,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    # Signing out ends the session, and its end revokes what its sign-in gave (oidc's
    # signins_ended receiver); the library would delete every token of the person, the
    # apps of their other sessions too.
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["client_secret_basic", "client_secret_post"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    ],
    "OAUTH2_VALIDATOR_CLASS": "keyfob.oidc.validators.KeyfobValidator",
    "SCOPES": {
        "openid": _("Know who you are"),
        "profile": _("See your name"),
        "email": _("See your e-mail address"),
        # keyfob-ssh login's device grant (issue 26): a certificate for the linked logins.
        "ssh": _("Get SSH certificates for the logins linked to your account"),
        # The keyfob_grants claim (issue 27): the accounts this person acts for, and what
        # they may do there, as far as this session's proofs allow.
        "grants": _("See which customer accounts you may act for, and your rights there"),
    },
    "DEFAULT_SCOPES": ["openid"],
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if DEBUG else ["https"],
    "ALLOW_LOCALHOST_LOOPBACK": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": KEYFOB_OIDC_ACCESS_TOKEN_SECONDS,
    "ID_TOKEN_EXPIRE_SECONDS": KEYFOB_OIDC_ACCESS_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": KEYFOB_OIDC_REFRESH_TOKEN_DAYS * 86400,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REQUEST_APPROVAL_PROMPT": "force",
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # The device authorization grant (RFC 8628, keyfob.oidc.device): the library wants the
    # verification URIs as absolute URLs at start-up, but with KEYFOB_OIDC_ISSUER empty the
    # host comes from each request, so keyfob.oidc's DeviceAuthorizeView fills both in its
    # answer (from the issuer's origin, else the request's) and these stay unset.
    "OAUTH_DEVICE_VERIFICATION_URI": None,
    "OAUTH_DEVICE_VERIFICATION_URI_COMPLETE": None,
    # XXXX-XXXX from 32 characters without 0/O/1/I (the library's has both), imported when
    # first used: the app's models are not loaded while settings are read.
    "OAUTH_DEVICE_USER_CODE_GENERATOR": lambda: import_string("keyfob.oidc.device.new_user_code")(),
    # The library's hook reads the device grant before the client is authenticated and
    # fails on an unknown code; KeyfobValidator.validate_device_code does it instead.
    "OAUTH_PRE_TOKEN_VALIDATION": [],
    "DEVICE_FLOW_INTERVAL": 5,
}

# Every KEYFOB_* variable read above: the README's settings table must list exactly these.
KEYFOB_VARIABLES = frozenset(env.read)
