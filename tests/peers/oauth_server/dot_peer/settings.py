"""Settings for the DOT test peer. Self-contained: nothing from the Connector Console project.

Required env var: ``DOT_PEER_DIR`` -- a writable directory for the SQLite database.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(os.environ["DOT_PEER_DIR"])

SECRET_KEY = "dot-peer-insecure-test-only-key"  # noqa: S105 - loopback test peer only
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "oauth2_provider",
]
# Sessions, CSRF and login for the authorization endpoint's login and consent pages (the
# Authorization Code Grant); the token endpoint and /api/me are unaffected.
MIDDLEWARE: list[str] = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
# Cookies ignore ports: on the same loopback host, names of our own keep the console's apart.
SESSION_COOKIE_NAME = "dot_peer_session"
CSRF_COOKIE_NAME = "dot_peer_csrf"
LOGIN_URL = "/accounts/login/"
ROOT_URLCONF = "dot_peer.urls"
TEMPLATES: list[dict[str, object]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [str(Path(__file__).resolve().parent / "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]
WSGI_APPLICATION = None

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "dot_peer.sqlite3"),
        # The peer serves requests from several threads; wait for locks instead of failing.
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

# Fast hashing: DOT hashes client secrets with Django's hashers too
# (CLIENT_SECRET_HASHER="default" -> first entry here), so both user passwords and
# client secrets are checked in microseconds instead of ~1 s of PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

OAUTH2_PROVIDER = {
    "SCOPES": {"read": "Reading scope", "write": "Writing scope"},
    "DEFAULT_SCOPES": ["read", "write"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    # RFC 9700 gate: False keeps the (discouraged) password grant working; DOT then
    # emits a DeprecationWarning + log line per request, filtered out below / in run.py.
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False,
    # Authorization codes need PKCE (RFC 7636), as the console always sends it.
    "PKCE_REQUIRED": True,
    # RFC 8252 §7.3: a loopback redirect URI matches on any port; the console's live test
    # server is on localhost, too.
    "ALLOW_LOCALHOST_LOOPBACK": True,
    # Each refresh returns a new refresh token and revokes the old one (the default, stated).
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"no_rfc9700_nag": {"()": "dot_peer.logfilter.DropRfc9700Nag"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "filters": ["no_rfc9700_nag"],
        }
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    # django.request logs 4xx as warnings; the peer answers 4xx on purpose, keep stderr quiet.
    "loggers": {"django.request": {"level": "ERROR"}},
}
