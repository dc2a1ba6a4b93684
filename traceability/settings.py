"""Settings, read from the environment (12-factor).

With nothing configured the ledger runs embedded: SQLite in ``var/`` and Celery over kombu's
filesystem transport, so a newcomer needs only Python. ``DATABASE_URL`` and ``CELERY_BROKER_URL``
switch to PostgreSQL and Redis. Production defaults are the safe ones: DEBUG is off unless asked for.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("LEDGER_VAR_DIR", BASE_DIR / "var"))


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def _env_positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a positive whole number")
    return int(raw)


def _env_whole(name: str, default: int) -> int:
    """A whole number, 0 allowed (no HSTS, no proxies)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number")
    return int(raw)


def _env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """The key from the environment, or one generated once and kept in ``var/`` for embedded use."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


def _database() -> dict:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "ledger.sqlite3",
            "OPTIONS": {
                # Writers take the lock when their transaction begins, so the web server and the
                # worker queue behind each other instead of failing with "database is locked".
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            # A file, not shared memory: tests hand work to a Celery worker thread on its own
            # connection. One per test process, so two test runs never share it.
            "TEST": {"NAME": str(VAR_DIR / f"test-ledger-{os.getpid()}.sqlite3")},
        }
    scheme = urlsplit(url).scheme
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {scheme!r} is not supported: use postgresql://user@host:5432/name"
            " (or leave DATABASE_URL unset for the embedded SQLite database)"
        )
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
    if config["ENGINE"] == "django.db.backends.postgresql":
        options = config.setdefault("OPTIONS", {})
        options["connect_timeout"] = 5
        # No JIT: the trace's plans are costed high (millions of rows in the tables) but run in
        # milliseconds, and JIT compiled each for 80-290 ms in the bench world (PERFORMANCE.md).
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
        # Statements run through ``core.db.prepared_cursor`` (a party's page of a run's units) are
        # prepared once per connection and planned once for any parameters (3 ms of planning saved
        # per page). Everything else is bound on the client as Django does by default, so these
        # are the only statements prepared, and the only ones a plan cache mode applies to.
        options.setdefault("prepare_threshold", 5)
        options["options"] += " -c plan_cache_mode=force_generic_plan"
    return dict(config)


DEBUG = _env_bool("DEBUG", False)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from here: no CDN, works offline
    "graphene_django",
    "csp",
    "django_htmx",
    "suppliers",
    "cells",
    "packs",
    "traceability",
    "traceability.pages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "traceability.middleware.RequestIdMiddleware",
    "traceability.middleware.SignInThrottleMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The pages' language: the one chosen with the switcher (a cookie), else the browser's.
    "traceability.middleware.PagesLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check, which reads the form: a page's oversized upload is refused unread.
    "traceability.middleware.BodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "traceability.urls"
WSGI_APPLICATION = "traceability.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "traceability.pages.context.navigation",
            ],
        },
    },
]

DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The pages speak English and Simplified Chinese (traceability/pages/locale); the compiled catalogue
# is committed next to its source, and a test checks that they agree.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The pages' sign-in, for every role; the admin keeps its own for operators.
LOGIN_URL = "pages:signin"
LOGIN_REDIRECT_URL = "pages:desk"

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request while it is missing
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"


def _default_storage() -> dict[str, object]:
    """Where the files the ledger keeps are (capture documents, exports, attachments): web and
    workers read them only through this storage, so it must be one they all reach. By default the
    filesystem at MEDIA_ROOT (a volume every container mounts); any Django storage backend will do,
    e.g. django-storages' S3 one: LEDGER_STORAGE_BACKEND=storages.backends.s3.S3Storage and
    LEDGER_STORAGE_OPTIONS='{"bucket_name": "ledger"}'."""
    backend = os.environ.get("LEDGER_STORAGE_BACKEND", "").strip() or "django.core.files.storage.FileSystemStorage"
    raw = os.environ.get("LEDGER_STORAGE_OPTIONS", "").strip() or "{}"
    try:
        options = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"LEDGER_STORAGE_OPTIONS is not JSON: {exc}") from None
    if not isinstance(options, dict):
        # Not the value itself: it may hold an access key.
        kind = type(options).__name__
        raise ImproperlyConfigured(
            f"LEDGER_STORAGE_OPTIONS must be a JSON object of the backend's options, not a {kind}"
        )
    return {"BACKEND": backend, "OPTIONS": options}


STORAGES = {
    "default": _default_storage(),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Security -----------------------------------------------------------------------------------
# With DEBUG off the ledger assumes it is served over HTTPS, by itself or behind a TLS proxy, and
# `check --deploy` finds nothing to warn about: plain HTTP is redirected to HTTPS (except /health/,
# which load balancers ask over plain HTTP), browsers are told to use HTTPS for a year (HSTS) and
# cookies are sent over HTTPS only. Behind a proxy that terminates TLS, SECURE_PROXY_SSL_HEADER
# names the header it sets (X-Forwarded-Proto: https), or every request looks like plain HTTP and
# is redirected forever. LEDGER_PLAIN_HTTP=1 serves plain HTTP on purpose (`make run`, on localhost):
# no redirect, no HSTS, cookies without Secure.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
LEDGER_PLAIN_HTTP = _env_bool("LEDGER_PLAIN_HTTP", DEBUG)
if not LEDGER_PLAIN_HTTP:
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _env_whole("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("SECURE_HSTS_PRELOAD", True)
if _proxy_header := os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https")

# Every page lives within this policy: scripts, styles, fonts and images from the ledger itself
# (Swagger UI and the admin are served locally, the docs' start-up script from its own URL), no
# plugins, no framing, forms posted only here. Inline styles stay allowed: the docs page and Swagger
# UI set them, and a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Failed sign-ins (a wrong password on the admin's login form or over basic authentication, an
# unknown, revoked or expired API token) are counted per client address: after this many in the
# window, every sign-in from it is answered 429 with Retry-After until the window ends, right
# credentials included, so guessing costs the window. Counted in the cache (per web process unless
# CACHES is shared). LEDGER_NUM_PROXIES: how many proxies append to X-Forwarded-For before the
# ledger; 0 reads the client from the connection.
LEDGER_SIGNIN_FAILURES = _env_positive_int("LEDGER_SIGNIN_FAILURES", 10)
LEDGER_SIGNIN_WINDOW = _env_positive_int("LEDGER_SIGNIN_WINDOW", 300)
LEDGER_NUM_PROXIES = _env_whole("LEDGER_NUM_PROXIES", 0)
# HTTP basic authentication of the REST and EPCIS interfaces: off unless asked for (a password
# sent with every request; tokens are the way for systems, sessions for browsers).
LEDGER_BASIC_AUTH = _env_bool("LEDGER_BASIC_AUTH", False)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Tokens for systems (an MES capturing EPCIS events, a QA script), sessions for the browser.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "traceability.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        *(["traceability.api.authentication.BasicAuthentication"] if LEDGER_BASIC_AUTH else []),
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cell traceability ledger API",
    "DESCRIPTION": "Power-bank serials, the cell and material lots inside them, and where they went.",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# The GraphQL API's schema; ``manage.py graphql_schema`` writes its SDL to schema.graphql (reviewed).
GRAPHENE = {"SCHEMA": "traceability.gql.schema.schema", "SCHEMA_OUTPUT": str(BASE_DIR / "schema.graphql")}

# --- Celery -------------------------------------------------------------------------------------
# Tasks keep their progress and outcome on database rows, so no result backend is configured.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "").strip() or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = Path(os.environ.get("CELERY_BROKER_DIR", VAR_DIR / "broker"))
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    _scheme = urlsplit(CELERY_BROKER_URL).scheme
    if _scheme not in {"redis", "rediss", "amqp", "pyamqp"}:
        raise ImproperlyConfigured(
            f"CELERY_BROKER_URL scheme {_scheme!r} is not supported: use redis://host:6379/0"
            " (or leave CELERY_BROKER_URL unset for the embedded filesystem broker)"
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if _prefix := os.environ.get("CELERY_BROKER_KEYPREFIX", ""):
        # Lets deployments (and test runs) share one Redis without seeing each other's messages.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = _prefix
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# A trace run writes the segments of about this many units per chunk (one Celery message each).
LEDGER_TRACE_CHUNK_UNITS = _env_positive_int("LEDGER_TRACE_CHUNK_UNITS", 500_000)

# The largest file of evidence a finding accepts (a lab report, photographs, an X-ray image).
LEDGER_ATTACHMENT_MAX_BYTES = _env_positive_int("LEDGER_ATTACHMENT_MAX_BYTES", 25 * 2**20)

# The largest request body of each kind, refused with 413 before it is read (traceability.core.limits):
# one EPCIS event (POST /epcis/events), an EPCIS document (POST /epcis/capture), a CSV file
# (POST /api/v1/csv/{kind}/), and any other request's JSON (a finding, a transition, an export).
LEDGER_MAX_EVENT_BYTES = _env_positive_int("LEDGER_MAX_EVENT_BYTES", 2**20)
LEDGER_MAX_CAPTURE_BYTES = _env_positive_int("LEDGER_MAX_CAPTURE_BYTES", 16 * 2**20)
LEDGER_MAX_CSV_BYTES = _env_positive_int("LEDGER_MAX_CSV_BYTES", 8 * 2**20)
LEDGER_MAX_JSON_BYTES = _env_positive_int("LEDGER_MAX_JSON_BYTES", 2**20)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
