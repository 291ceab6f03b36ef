"""Settings for the test suite: the real PostgreSQL and Redis, on Redis databases of their own."""

from .env import env_str
from .settings import *  # noqa: F403

# A `make run` worker on this machine consumes Redis database 0; tests must not share its queue.
# A run that names its own CELERY_BROKER_URL / REDIS_URL (a second checkout, a parallel run)
# keeps them.
CELERY_BROKER_URL = env_str(
    "TEST_CELERY_BROKER_URL", env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
REDIS_URL = env_str("TEST_REDIS_URL", env_str("REDIS_URL", "redis://127.0.0.1:6379/15"))
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Separate names let several test runs share one PostgreSQL server.
DATABASES["default"]["TEST"] = {  # noqa: F405
    "NAME": env_str("TEST_DATABASE_NAME", f"test_{DATABASES['default']['NAME']}")  # noqa: F405
}
