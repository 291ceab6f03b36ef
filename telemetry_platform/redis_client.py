"""The platform's own Redis connection (rate-limit buckets, telemetry aggregates)."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def redis_client() -> redis.Redis:
    """Return the client for REDIS_URL; short timeouts so ingest never hangs on Redis."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
