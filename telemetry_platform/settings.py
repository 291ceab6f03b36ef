"""Django settings. Every environment variable is declared once, in parameters.py."""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from .parameters import PARAMETERS, read_all

BASE_DIR = Path(__file__).resolve().parent.parent

# Every declared variable, parsed and checked; those Django reads become settings of the
# same name (SECRET_KEY, DEBUG, ..., TELEMETRY_*), the rest are used below.
_env = read_all()
globals().update(
    {
        parameter.django_setting: _env[parameter.name]
        for parameter in PARAMETERS
        if parameter.django_setting
    }
)

INSTALLED_APPS = [
    "telemetry_platform.admin_apps.PlatformAdminConfig",  # the governance home as index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "csp",
    "governance",
    "ingest",
    "audit",
    "privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "telemetry_platform.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "telemetry_platform.middleware.StoreUnavailableMiddleware",
]

# Production transport security (README "Production settings"). Off by default so
# `make run` works over plain http on 127.0.0.1; `check --deploy` is clean with them set.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if _env["TRUST_X_FORWARDED_PROTO"]:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy on every response (django-csp): the admin and the API docs load
# scripts only from the platform itself; our pages' small <style> blocks need inline style.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

ROOT_URLCONF = "telemetry_platform.urls"
WSGI_APPLICATION = "telemetry_platform.wsgi.application"

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



def _database(url: str) -> dict:
    database = dj_database_url.parse(
        url, conn_max_age=_env["DATABASE_CONN_MAX_AGE"], conn_health_checks=True
    )
    # A request must fail fast (and answer 503) rather than hang when PostgreSQL is unreachable.
    database.setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", _env["DATABASE_CONNECT_TIMEOUT"]
    )
    return database


# README "Deployment": the primary (maybe through PgBouncer), a session connection for
# session-level locks, a streaming replica for read-only work (telemetry_platform.db_router).
DATABASES = {"default": _database(_env["DATABASE_URL"])}
if _env["DATABASE_POOL_MODE"] == "transaction":
    # Server sessions change between transactions: no cursor may outlive one (WITH HOLD
    # cursors of .iterator()), no statement may be prepared on a session (PgBouncer 1.18
    # does not track them).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
if _env["DATABASE_SESSION_URL"]:
    DATABASES["session"] = _database(_env["DATABASE_SESSION_URL"])
    DATABASES["session"]["TEST"] = {"MIRROR": "default"}
if _env["DATABASE_REPLICA_URL"]:
    DATABASES["replica"] = _database(_env["DATABASE_REPLICA_URL"])
    # A stopped replica must cost a read little before it falls back to the primary.
    DATABASES["replica"]["OPTIONS"]["connect_timeout"] = 2
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["telemetry_platform.db_router.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "telemetry_platform.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Telemetry Governance Platform API",
    "DESCRIPTION": (
        "Ingest governed telemetry (per-event answers, idempotent, redacted before storage) "
        "and manage the proto-first schema registry."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RevisionStatusEnum": "governance.choices.RevisionStatus",
        "EventOutcomeEnum": ["accepted", "duplicate", "rejected"],
    },
}

# Celery: Redis is the broker; results are only kept for on-demand task calls.
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "telemetry_platform.logging.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "telemetry_platform.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if _env["LOG_FORMAT"] == "json" else "plain",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": _env["LOG_LEVEL"].upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# The body limit is enforced by the ingest view; let Django read bodies up to it.
DATA_UPLOAD_MAX_MEMORY_SIZE = _env["TELEMETRY_MAX_BODY_BYTES"]
