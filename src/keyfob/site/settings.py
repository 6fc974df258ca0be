"""Keyfob's Django settings, read from the environment only (``KEYFOB_*``).

The defaults are the embedded, single-machine ones: SQLite and generated keys in
``KEYFOB_DATA_DIR`` (default ``./var``). Anything that weakens a default is named here.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("KEYFOB_DATA_DIR", "var")).resolve()


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


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


def _database(url: str | None) -> dict[str, object]:
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
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ValueError("KEYFOB_DATABASE_URL must start with postgresql://")
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
        "TEST": {"NAME": os.environ.get("KEYFOB_TEST_DB_NAME", "keyfob_test")},
    }


DEBUG = _env_bool("KEYFOB_DEBUG", False)
SECRET_KEY = os.environ.get("KEYFOB_SECRET_KEY") or _generated_secret("django-secret-key")
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("KEYFOB_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if h.strip()
]
HTTPS = _env_bool("KEYFOB_HTTPS", False)

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
    "keyfob.support",
    "keyfob.api",
]

MIDDLEWARE = [
    # First: it times and logs every request, and gives it the id other log lines carry.
    "keyfob.site.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
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

DATABASES = {"default": _database(os.environ.get("KEYFOB_DATABASE_URL"))}
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
KEYFOB_SESSION_MAX_AGE = int(os.environ.get("KEYFOB_SESSION_MAX_AGE", 12 * 3600))
KEYFOB_SESSION_IDLE = int(os.environ.get("KEYFOB_SESSION_IDLE", 30 * 60))
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
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if HTTPS:
    SECURE_SSL_REDIRECT = _env_bool("KEYFOB_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = 31536000
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # A load balancer probes the app over plain HTTP; a redirect would read as "down".
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# HSTS covers the portal's own host only: includeSubDomains and preload would force HTTPS
# on every other name under the provider's domain, a choice for the operator's front proxy.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "site" / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("KEYFOB_STATIC_ROOT") or None
# Serve from the app directories directly so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("KEYFOB_MAIL_FROM", "Keyfob <keyfob@localhost>")

# KEYFOB_LOG_FORMAT=json: one JSON object per line (time, level, request id, account id,
# event), request lines included; see keyfob.site.logging for what a line may carry.
KEYFOB_LOG_FORMAT = os.environ.get("KEYFOB_LOG_FORMAT", "text").strip().lower()
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
    "loggers": {
        "keyfob": {"level": os.environ.get("KEYFOB_LOG_LEVEL", "INFO" if _JSON_LOGS else "WARNING")}
    },
}

# Keyfob's own settings; each app reads them through its app_settings object.
KEYFOB_SITE_NAME = os.environ.get("KEYFOB_SITE_NAME", "Keyfob")
KEYFOB_DATA_DIR = DATA_DIR
KEYFOB_SECRET_KEYS = os.environ.get("KEYFOB_SECRET_KEYS", "")
# Outgoing mail (keyfob.audit.app_settings reads these): smtp://, smtps:// or
# smtp+starttls://user:pass@host:port; empty prints notices instead of sending them.
KEYFOB_SMTP_URL = os.environ.get("KEYFOB_SMTP_URL", "")
KEYFOB_MAIL_MAX_ATTEMPTS = int(os.environ.get("KEYFOB_MAIL_MAX_ATTEMPTS", 55))
# Sent and failed notices name an address, an IP address and a browser: kept this long.
KEYFOB_OUTBOX_RETENTION_DAYS = int(os.environ.get("KEYFOB_OUTBOX_RETENTION_DAYS", 30))
# Reverse proxies whose X-Forwarded-For is believed: addresses or CIDRs, comma-separated.
KEYFOB_TRUSTED_PROXIES = [
    p.strip() for p in os.environ.get("KEYFOB_TRUSTED_PROXIES", "").split(",") if p.strip()
]
# /metrics answers only with "Authorization: Bearer <token>"; without a token it is off (404).
KEYFOB_METRICS_TOKEN = os.environ.get("KEYFOB_METRICS_TOKEN", "")
# Whether the secrets came from the environment (the deploy checks insist on it).
KEYFOB_SECRET_KEY_FROM_ENV = bool(os.environ.get("KEYFOB_SECRET_KEY"))
