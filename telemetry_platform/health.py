"""GET /healthz: whether PostgreSQL and Redis answer."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

CHECK_TIMEOUT_SECONDS = 2


def database_reachable() -> tuple[bool, str]:
    """Return (ok, detail) for a ``SELECT 1`` on the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, "ok"
    except Exception as exc:  # any failure means "not reachable"; the reason is the class name
        connection.close_if_unusable_or_obsolete()
        return False, type(exc).__name__


def redis_reachable() -> tuple[bool, str]:
    """Return (ok, detail) for a PING to the platform's Redis."""
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=CHECK_TIMEOUT_SECONDS,
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        )
        client.ping()
        client.close()
        return True, "ok"
    except redis.RedisError as exc:
        return False, type(exc).__name__


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when both dependencies answer, 503 otherwise, with one entry per check."""
    checks = {}
    for name, probe in (("database", database_reachable), ("redis", redis_reachable)):
        ok, detail = probe()
        checks[name] = {"ok": ok, "detail": detail}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
