"""GET /healthz reports database and Redis reachability."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_healthy_when_both_answer(client):
    """Both dependencies up: 200 and ok for each."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": {"ok": True, "detail": "ok"},
        "redis": {"ok": True, "detail": "ok"},
    }


def test_unreachable_redis_is_503(client, settings):
    """Redis unreachable (a closed port): 503 naming the failed check."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
