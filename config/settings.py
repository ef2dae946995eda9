"""Settings for Connector Console, read from the environment (see README "Configuration")."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _local_value(filename: str, make: Callable[[], str]) -> str:
    """Read a development-only value from .local/, creating it once so restarts reuse it."""
    path = LOCAL_DIR / filename
    if not path.exists():
        LOCAL_DIR.mkdir(exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", False)
TESTING = "pytest" in sys.modules

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Generate one with: python -c "
            "'import secrets; print(secrets.token_urlsafe(50))'"
        )
    import secrets

    SECRET_KEY = _local_value("secret_key", lambda: secrets.token_urlsafe(50))

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

KEY_HELP = (
    "Generate one with: python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'. To rotate, list the new key first: NEW,OLD."
)


def _field_encryption_keys() -> list[str]:
    raw = os.environ.get("FIELD_ENCRYPTION_KEY", "").strip()
    if not raw:
        if not DEBUG:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEY is not set. {KEY_HELP}")
        raw = _local_value("field_encryption_key", lambda: Fernet.generate_key().decode())
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            # The key itself must never reach the message: it may be a real key with a typo.
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEY key #{position} is not a valid Fernet key "
                f"(32 url-safe base64-encoded bytes). {KEY_HELP}"
            ) from None
    return keys


FIELD_ENCRYPTION_KEY = _field_encryption_keys()

# Audit chain HMAC keys, newest first (README "Audit log"); the database never holds them.
# Required outside debug, like the other keys: an unkeyed chain can be rebuilt by anyone who can
# write to the database, so a production log without a key would only look tamper-evident.
from audit.keys import KEY_HELP as CHAIN_KEY_HELP  # noqa: E402
from audit.keys import generate_chain_key, parse_chain_keys  # noqa: E402


def _audit_chain_keys() -> list[bytes]:
    raw = os.environ.get("AUDIT_CHAIN_KEY", "").strip()
    if not raw:
        if not DEBUG:
            raise ImproperlyConfigured(f"AUDIT_CHAIN_KEY is not set. {CHAIN_KEY_HELP}")
        raw = _local_value("audit_chain_key", generate_chain_key)
    return parse_chain_keys(raw)


AUDIT_CHAIN_KEYS = _audit_chain_keys()
# On PostgreSQL a transaction that records only test runs commits without waiting for the disk
# (audit.writer explains what a crash of the database server can then lose); 1 makes it wait.
AUDIT_DURABLE_TEST_RUNS = env_bool("AUDIT_DURABLE_TEST_RUNS", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "encrypted_model_fields",
    "connectors",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# A refused form post is recorded in the audit log like every other refusal.
CSRF_FAILURE_VIEW = "audit.views.csrf_failure"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DJANGO_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the test button and page loads write concurrently.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django turns psycopg's prepared statements off, for poolers in transaction mode. The ORM's
    # queries never use them (its cursor binds values on the client); the recording's pipelined
    # statements (audit.pipeline) do, and run in about half the time once prepared. Behind
    # such a pooler (PgBouncer before 1.21, or without max_prepared_statements) set
    # DATABASE_PREPARE_THRESHOLD=off.
    _prepare = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5").strip().lower()
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "prepare_threshold": None if _prepare in ("", "off", "none") else int(_prepare),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "connectors:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Tests and development serve static files straight from the source folders.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
    if env_bool("DJANGO_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "connectors.logging.RedactSecretsFilter"},
        # Every query value in urllib3's request lines, whatever the parameter is named.
        "redact_query_values": {"()": "config.log_redaction.RedactQueryValuesFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {
            "()": "connectors.logging.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_query_values", "redact_secrets"],
        },
        # Django's own, kept: error e-mails to ADMINS outside debug.
        "mail_admins": {
            "level": "ERROR",
            "filters": ["require_debug_false"],
            "class": "django.utils.log.AdminEmailHandler",
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
    "loggers": {
        # Replaces Django's default "django" handlers: its debug console handler printed every
        # django.* line a second time next to the root's (e.g. the autoreloader's "Watching for
        # file changes" at `make run`, each 404 warning).
        "django": {"handlers": ["mail_admins"], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        # django-axes: failures and lock-outs only (see "Sign-in" below).
        "axes": {"level": "WARNING"},
    },
}

# Connector Console's own settings.
CONNECTORS_TOKEN_TIMEOUT = float(os.environ.get("CONNECTORS_TOKEN_TIMEOUT", "10"))
CONNECTORS_OUTBOUND_ALLOW = os.environ.get("CONNECTORS_OUTBOUND_ALLOW", "")
# Loopback is what the demo's sandbox token endpoint listens on; production refuses it by default.
CONNECTORS_OUTBOUND_ALLOW_LOOPBACK = env_bool("CONNECTORS_OUTBOUND_ALLOW_LOOPBACK", DEBUG)
CONNECTORS_TEST_RATE_LIMIT = os.environ.get("CONNECTORS_TEST_RATE_LIMIT", "10/60")
CONNECTORS_DEMO = env_bool("CONNECTORS_DEMO", DEBUG)
CONNECTORS_PAGE_SIZE = int(os.environ.get("CONNECTORS_PAGE_SIZE", "25"))
# A connector whose last saved-configuration test is older than this many days is "stale".
CONNECTORS_STALE_DAYS = int(os.environ.get("CONNECTORS_STALE_DAYS", "7"))
# Politeness: token requests in flight at once to one origin, across every worker (README
# "Testing many connectors").
CONNECTORS_PER_HOST_CONCURRENCY = int(os.environ.get("CONNECTORS_PER_HOST_CONCURRENCY", "8"))
# How long a claimed batch item may run before the reaper calls its worker gone; longer than
# any one test (token and API request, each bounded by CONNECTORS_TOKEN_TIMEOUT).
CONNECTORS_BATCH_LEASE_SECONDS = int(os.environ.get("CONNECTORS_BATCH_LEASE_SECONDS", "120"))
# Processes a batch run by the command itself (no worker reachable) is spread over, on
# PostgreSQL: 0 means one per CPU. A batch is bound by Python's CPU, which one interpreter
# spends on one core at a time. SQLite writes one at a time, so there it is always one.
CONNECTORS_BATCH_PROCESSES = int(os.environ.get("CONNECTORS_BATCH_PROCESSES", "0"))
# Batch items per task message: a worker runs a message's items at once, on threads of its own,
# so even a worker with one process per CPU (Celery's default pool) runs that many tests at once.
CONNECTORS_BATCH_CHUNK = max(1, int(os.environ.get("CONNECTORS_BATCH_CHUNK", "25")))

# --- Scheduled re-validation and notifications (issue 10; README "Schedules", "Notifications") ---
# The global interval used until an admin stores one on /fleet/schedule/ (0: off).
CONNECTORS_SCHEDULE_DEFAULT_MINUTES = int(
    os.environ.get("CONNECTORS_SCHEDULE_DEFAULT_MINUTES", "360")
)
# Consecutive failures before the "failing" notice (the health state turns at the first).
CONNECTORS_FAIL_THRESHOLD = int(os.environ.get("CONNECTORS_FAIL_THRESHOLD", "2"))
# Tries of a webhook delivery after the first, waiting 2, 4, 8 ... seconds in between.
CONNECTORS_WEBHOOK_RETRIES = int(os.environ.get("CONNECTORS_WEBHOOK_RETRIES", "4"))
# The link in notices: the console's own address, as owners reach it (no trailing slash).
CONNECTORS_CONSOLE_URL = os.environ.get("CONNECTORS_CONSOLE_URL", "http://127.0.0.1:8000")
EMAIL_BACKEND = os.environ.get("DJANGO_EMAIL_BACKEND", "").strip() or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "connector-console@localhost")

# --- Sign-in, sessions and response headers (issue 8; README "Configuration") ---


def env_positive(name: str, default: str) -> float:
    """A positive number from the environment; anything else stops start-up, naming the variable."""
    raw = os.environ.get(name, "").strip() or default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ImproperlyConfigured(f"{name} must be a positive number, not {raw!r}.")
    return value


INSTALLED_APPS += ["axes", "csp", "accounts"]  # accounts after axes: its receivers run second
# After Authentication/Message middleware (the idle check signs out and leaves a message);
# AxesMiddleware last, as django-axes requires, to turn a lock-out into the lock-out page.
MIDDLEWARE += [
    "accounts.middleware.IdleSessionTimeoutMiddleware",
    "config.security.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    # A view's Http404 gets the console's 404 page even with DEBUG on (config.errors).
    "config.errors.NotFoundPageMiddleware",
    "axes.middleware.AxesMiddleware",
]
AUTHENTICATION_BACKENDS = [
    # Refuses any login (right password included) while the user name or address is locked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = max(1, int(env_positive("LOGIN_FAILURE_LIMIT", "5")))
AXES_COOLOFF_TIME = timedelta(minutes=env_positive("LOGIN_COOLOFF_MINUTES", "15"))
# Locked per user name and, separately, per address: 5 guesses at one account from many
# addresses, or 5 guesses at many accounts from one address.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "accounts.signin.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.signin.client_ip"
SIGNIN_BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
# A success must not wipe the address's failures: one valid account would reset the counter.
AXES_RESET_ON_SUCCESS = False
# Sign-ins are in the audit log; axes keeps only the failure counters it needs, and logs only
# failures and lock-outs (WARNING), not a start-up banner on every manage.py command.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

SESSION_IDLE_SECONDS = max(1, int(env_positive("SESSION_IDLE_SECONDS", "28800")))
# The last-seen stamp is rewritten at most this often (one session write a minute, not a request).
SESSION_TOUCH_SECONDS = 60
# Backstop: the stored session and its cookie lapse on their own just after the idle limit.
SESSION_COOKIE_AGE = SESSION_IDLE_SECONDS + SESSION_TOUCH_SECONDS

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # The one style attribute left, `white-space: pre-wrap` in templates/audit/detail.html,
        # by its hash; drop this once that template uses the class cc-pre-wrap (console.css).
        "style-src-attr": [
            "'unsafe-hashes'",
            "'sha256-MhKNMxi8AYujc7LgatwtyNdREZ6Cf3QT4yvkby13/l0='",
        ],
        # Bootstrap draws its icons (select arrows, toggler) as data: SVG images.
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}
PERMISSIONS_POLICY = os.environ.get(
    "DJANGO_PERMISSIONS_POLICY",
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()",
)

# Debug pages and error e-mails cleanse posted values and secrets even with DEBUG on.
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.CleansingExceptionReporterFilter"

# --- Background runner: Celery (issue 10; README "Background runner" and "Production") ---
# Production: CELERY_BROKER_URL=redis://… or amqp://…, shared by every web and worker machine.
# Unset: kombu's filesystem transport under .local/celery/, so `make run` needs no extra server.
# That queue lives on one machine's disk: run the web server and the worker on the same host.
# "localhost" only silences kombu's "No hostname was supplied" warning; no network is involved.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "").strip() or "filesystem://localhost//"
CELERY_DATA_DIR = Path(os.environ.get("CELERY_DATA_DIR", "").strip() or LOCAL_DIR / "celery")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem:"):
    # One folder both ways: producers write where the worker reads (made by config/celery.py).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DATA_DIR / "queue"),
        "data_folder_out": str(CELERY_DATA_DIR / "queue"),
        "control_folder": str(CELERY_DATA_DIR / "control"),
        # A worker that has taken all it may (a task per process) looks for the next message
        # this often; kombu's default, 1 s, made a batch wait a second per task it ran.
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis:", "rediss:")):
    # A broker gone without closing the connection fails a send in seconds instead of hanging
    # the request forever (the worker's own reads return within brpop's 1 s anyway).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Results: the product records outcomes in its own tables (test runs, batches), so no result
# backend is needed. Set one (redis://…, or file:///path) to use AsyncResult.get() from a shell.
# The embedded default keeps results in files beside the queue, which `make run` uses to check
# that the worker answers.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "").strip() or (
    f"file://{CELERY_DATA_DIR / 'results'}" if CELERY_BROKER_URL.startswith("filesystem:") else None
)
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged when it has finished, not when a worker took it, and a worker takes
# one at a time: a worker killed mid-task leaves the message for another worker (Redis hands
# it on after the visibility timeout). Tasks must therefore be safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Schedules live in the database (django-celery-beat), edited in the admin and by the console.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Task modules beyond each app's tasks.py (autodiscovery finds only those).
CELERY_IMPORTS = ["connectors.tasks_schedule", "connectors.tasks_notify", "connectors.tasks_jwks"]
INSTALLED_APPS += ["django_celery_beat"]
# Load balancers probe /healthz over plain HTTP; it must answer instead of redirecting.
SECURE_REDIRECT_EXEMPT = [r"^healthz(/live)?$"]
HEALTHZ_TIMEOUT = env_positive("HEALTHZ_TIMEOUT", "1")

# --- The JSON API (README "API"): DRF, drf-spectacular, knox personal tokens, throttling ---
INSTALLED_APPS += [
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "connectors.api",
]
# Personal tokens carry a name and a last-used time: the API app's own model (knox is swappable).
KNOX_TOKEN_MODEL = "api.ApiToken"
REST_KNOX = {
    # A token lives 90 days unless its creator chooses otherwise; None would be "never".
    "TOKEN_TTL": timedelta(days=env_positive("API_TOKEN_DAYS", "90")),
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_PREFIX": "cc_",
    "AUTO_REFRESH": False,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "connectors.api.auth.AuditedTokenAuthentication",
        # The browser's session, with CSRF enforced on unsafe methods (DRF's SessionAuthentication).
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["connectors.api.permissions.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["connectors.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": os.environ.get("API_RATE_LIMIT", "600/min")},
    "EXCEPTION_HANDLER": "connectors.api.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Connector Console API",
    "DESCRIPTION": "Connectors, connection tests, the audit log, import and export. Secrets are "
    'write-only: a response shows a stored one as {"stored": true}.',
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are for signed-in users and token holders only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the vendored files of drf-spectacular-sidecar: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Several fields are named "state" (health, batch, batch item): name each choice set. The
    # health states keep the name the schema first gave them (generated clients use it).
    "ENUM_NAME_OVERRIDES": {
        "StateEnum": ["passing", "failing", "never", "stale"],
        "BatchStateEnum": ["running", "cancelled", "finished"],
        "BatchItemStateEnum": ["pending", "running", "done", "skipped", "lost"],
    },
}
