"""GET /metrics: Prometheus exposition, correct across gunicorn worker processes."""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from ingest.telemetry_metrics import TelemetryMetricsCollector

TELEMETRY_COLLECTOR = TelemetryMetricsCollector()


def _registry() -> CollectorRegistry:
    # With several gunicorn workers each process writes its samples to
    # PROMETHEUS_MULTIPROC_DIR; the collector merges them on every scrape.
    # Telemetry aggregates come from Redis in both cases.
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    registry.register(TELEMETRY_COLLECTOR)
    return registry


class _DefaultRegistry:
    """Adapts the process's default registry into a per-scrape one."""

    def collect(self):
        return REGISTRY.collect()


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    if not token:
        return True
    presented = request.headers.get("Authorization", "")
    return hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve every metric; require ``Authorization: Bearer $METRICS_BEARER_TOKEN`` when set."""
    if not _authorized(request):
        response = HttpResponse("metrics need a bearer token\n", status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
