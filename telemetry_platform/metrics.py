"""GET /metrics: Prometheus exposition, correct across gunicorn worker processes and nodes.

``/metrics`` is this node's: its processes' counters and histograms (merged from
``PROMETHEUS_MULTIPROC_DIR``), and, unless ``METRICS_NODE_AGGREGATES`` is false, the
cluster-wide aggregates kept in Redis (client telemetry and service metrics, the same on
every node). With several nodes, set it false and scrape ``/metrics/aggregates`` once, so
those series are not exposed (and summed) once per node (README, "Deployment").
"""

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
from prometheus_client.core import Metric

from ingest.service_metrics import ServiceMetricsCollector
from ingest.telemetry_metrics import BareCounter, TelemetryMetricsCollector

TELEMETRY_COLLECTOR = TelemetryMetricsCollector()
SERVICE_COLLECTOR = ServiceMetricsCollector()


def _registry(*, node: bool, aggregates: bool) -> CollectorRegistry:
    # With several gunicorn workers each process writes its samples to
    # PROMETHEUS_MULTIPROC_DIR; the collector merges them on every scrape.
    # Telemetry aggregates come from Redis, whichever node serves them.
    registry = CollectorRegistry()
    if node and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    elif node:
        registry.register(_DefaultRegistry())
    if aggregates:
        registry.register(TELEMETRY_COLLECTOR)
        registry.register(SERVICE_COLLECTOR)  # service counters (service_metric events)
    return registry


class _DefaultRegistry:
    """Adapts the process's default registry into a per-scrape one."""

    def collect(self):
        return REGISTRY.collect()


class _Families:
    """A registry of given families, for rendering them one at a time."""

    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> tuple[Metric, ...]:
        return self.families


def exposition(registry: CollectorRegistry) -> bytes:
    """Render ``registry`` in the text format 0.0.4, bare-named counters typed ``counter``."""
    chunks = []
    for family in registry.collect():
        text = generate_latest(_Families(family))
        if isinstance(family, BareCounter):
            # prometheus_client would type the family under "<name>_total"; the text format
            # only asks that the TYPE line name the samples' own name.
            untyped = f"# TYPE {family.name} untyped\n".encode()
            text = text.replace(untyped, f"# TYPE {family.name} counter\n".encode(), 1)
        chunks.append(text)
    return b"".join(chunks)


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_BEARER_TOKEN
    if not token:
        return True
    presented = request.headers.get("Authorization", "")
    return hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())


def _serve(request: HttpRequest, registry: CollectorRegistry) -> HttpResponse:
    if not _authorized(request):
        response = HttpResponse("metrics need a bearer token\n", status=401)
        response["WWW-Authenticate"] = "Bearer"
        return response
    return HttpResponse(exposition(registry), content_type=CONTENT_TYPE_LATEST)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve this node's metrics (and the Redis aggregates unless METRICS_NODE_AGGREGATES
    is false); require ``Authorization: Bearer $METRICS_BEARER_TOKEN`` when set."""
    return _serve(request, _registry(node=True, aggregates=settings.METRICS_NODE_AGGREGATES))


@require_GET
def metrics_aggregates(request: HttpRequest) -> HttpResponse:
    """Serve only the cluster-wide aggregates kept in Redis: one scrape target for all nodes."""
    return _serve(request, _registry(node=False, aggregates=True))
