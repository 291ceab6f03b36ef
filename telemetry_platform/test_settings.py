"""Settings for the test suite: the real PostgreSQL and Redis, on Redis databases of their own."""

import os

from .parameters import BY_NAME
from .settings import *  # noqa: F403
from .settings import _env

_environ = os.environ


def _test_value(name: str, fallback: str) -> str:
    return BY_NAME[name].read(_environ) or fallback


# A `make run` worker on this machine consumes Redis database 0; tests must not share its
# queue. A run that names its own CELERY_BROKER_URL / REDIS_URL (a second checkout, a
# parallel run) keeps them.
_explicit = {name for name in ("CELERY_BROKER_URL", "REDIS_URL") if _environ.get(name)}
CELERY_BROKER_URL = _test_value(
    "TEST_CELERY_BROKER_URL",
    _env["CELERY_BROKER_URL"] if "CELERY_BROKER_URL" in _explicit else "redis://127.0.0.1:6379/14",
)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
REDIS_URL = _test_value(
    "TEST_REDIS_URL",
    _env["REDIS_URL"] if "REDIS_URL" in _explicit else "redis://127.0.0.1:6379/15",
)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Separate names let several test runs share one PostgreSQL server.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": _test_value("TEST_DATABASE_NAME", f"test_{DATABASES['default']['NAME']}")  # noqa: F405
}
