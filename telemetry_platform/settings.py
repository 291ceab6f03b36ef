"""Django settings, read from the environment; every variable is listed in the README."""

from __future__ import annotations

import json
from pathlib import Path

import dj_database_url

from .env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# A development default only: production sets SECRET_KEY (`manage.py check --deploy` warns).
SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-change-me-telemetry-governance-platform-0000")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
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
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://root@127.0.0.1:5432/telemetry_platform"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
# A request must fail fast (and answer 503) rather than hang when PostgreSQL is unreachable.
DATABASES["default"]["OPTIONS"].setdefault(
    "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5)
)
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
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# When set, GET /metrics requires "Authorization: Bearer <token>".
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN", "")

# Redis for the platform's own use (health checks, later rate-limit buckets).
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

LOG_FORMAT = env_str("LOG_FORMAT", "json")
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
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Platform settings (TELEMETRY_*): defaults and documentation live in telemetry_platform/conf.py.
TELEMETRY_MAX_BODY_BYTES = env_int("TELEMETRY_MAX_BODY_BYTES", 5 * 1024 * 1024)
TELEMETRY_MAX_EVENTS_PER_BATCH = env_int("TELEMETRY_MAX_EVENTS_PER_BATCH", 1000)
TELEMETRY_PURGE_BATCH_SIZE = env_int("TELEMETRY_PURGE_BATCH_SIZE", 10_000)
TELEMETRY_PURGE_BATCH_PAUSE_SECONDS = float(env_str("TELEMETRY_PURGE_BATCH_PAUSE_SECONDS", "0"))
TELEMETRY_PARTITION_DAYS_AHEAD = env_int("TELEMETRY_PARTITION_DAYS_AHEAD", 7)
# JSON {"class": [min, max], "*": [min, max]}: the retention days governance owners may set.
TELEMETRY_RETENTION_LIMITS = json.loads(
    env_str("TELEMETRY_RETENTION_LIMITS", '{"audit_event": [90, 3650], "*": [1, 3650]}')
)
TELEMETRY_MAX_DECOMPRESSED_BYTES = env_int("TELEMETRY_MAX_DECOMPRESSED_BYTES", 20 * 1024 * 1024)
TELEMETRY_MAX_EVENT_BYTES = env_int("TELEMETRY_MAX_EVENT_BYTES", 64 * 1024)
TELEMETRY_MAX_FUTURE_SKEW_SECONDS = env_int("TELEMETRY_MAX_FUTURE_SKEW_SECONDS", 300)
TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND = float(
    env_str("TELEMETRY_RATE_LIMIT_EVENTS_PER_SECOND", "2000")
)
TELEMETRY_RATE_LIMIT_BURST_SECONDS = float(env_str("TELEMETRY_RATE_LIMIT_BURST_SECONDS", "5"))
TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND = float(
    env_str("TELEMETRY_RATE_LIMIT_BYTES_PER_SECOND", str(2 * 1024 * 1024))
)
TELEMETRY_DB_STATEMENT_TIMEOUT_MS = env_int("TELEMETRY_DB_STATEMENT_TIMEOUT_MS", 5000)
# The body limit is enforced by the ingest view; let Django read bodies up to it.
DATA_UPLOAD_MAX_MEMORY_SIZE = TELEMETRY_MAX_BODY_BYTES

# Keyed-hash keys as "id:secret,id:secret"; TELEMETRY_HASH_KEY_ID picks the one for new data.
# Rotation adds a key and switches the id; old keys stay listed so search still finds old rows.
TELEMETRY_HASH_KEYS = dict(
    item.split(":", 1)
    for item in env_list("TELEMETRY_HASH_KEYS", ["k1:dev-insecure-hash-key-change-me"])
)
TELEMETRY_HASH_KEY_ID = env_str("TELEMETRY_HASH_KEY_ID", next(iter(TELEMETRY_HASH_KEYS)))
if TELEMETRY_HASH_KEY_ID not in TELEMETRY_HASH_KEYS:
    raise ValueError("TELEMETRY_HASH_KEY_ID must name a key listed in TELEMETRY_HASH_KEYS")
TELEMETRY_PLAN_REFRESH_SECONDS = float(env_str("TELEMETRY_PLAN_REFRESH_SECONDS", "1"))
# Audit digest keys as "id:secret,id:secret" (heads and daily digest files); keep old ids
# listed after a rotation so older digests still verify.
TELEMETRY_AUDIT_DIGEST_KEYS = dict(
    item.split(":", 1)
    for item in env_list(
        "TELEMETRY_AUDIT_DIGEST_KEYS", ["d1:dev-insecure-audit-digest-key-change-me"]
    )
)
TELEMETRY_AUDIT_DIGEST_KEY_ID = env_str(
    "TELEMETRY_AUDIT_DIGEST_KEY_ID", next(iter(TELEMETRY_AUDIT_DIGEST_KEYS))
)
if TELEMETRY_AUDIT_DIGEST_KEY_ID not in TELEMETRY_AUDIT_DIGEST_KEYS:
    raise ValueError("TELEMETRY_AUDIT_DIGEST_KEY_ID must name a key in TELEMETRY_AUDIT_DIGEST_KEYS")
# Where beat writes one digest file per closed UTC day (empty: off). Use write-once storage.
TELEMETRY_AUDIT_DIGEST_DIR = env_str("TELEMETRY_AUDIT_DIGEST_DIR", "")

# Fields with no classification: "drop" (default) or "reject" the whole event.
TELEMETRY_UNCLASSIFIED_FIELDS = env_str("TELEMETRY_UNCLASSIFIED_FIELDS", "drop")
# A pseudonymous id kept as-is (e.g. actor_scope_hash) that is not a hash: "reject" or "hash".
TELEMETRY_UNHASHED_PSEUDONYM = env_str("TELEMETRY_UNHASHED_PSEUDONYM", "reject")
if TELEMETRY_UNCLASSIFIED_FIELDS not in {"drop", "reject"}:
    raise ValueError("TELEMETRY_UNCLASSIFIED_FIELDS must be 'drop' or 'reject'")
if TELEMETRY_UNHASHED_PSEUDONYM not in {"reject", "hash"}:
    raise ValueError("TELEMETRY_UNHASHED_PSEUDONYM must be 'reject' or 'hash'")
_sensitive_keys = env_str("TELEMETRY_SENSITIVE_KEY_PATTERN", "")
if _sensitive_keys:
    TELEMETRY_SENSITIVE_KEY_PATTERN = _sensitive_keys
