"""Prometheus metrics of ingest (exposed on /metrics)."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Histogram

EVENTS = Counter(
    "telemetry_ingest_events",
    "Events received by the ingest API, by class, schema and outcome.",
    ["event_class", "schema", "outcome", "code"],
)
DEPRECATED_SCHEMA_EVENTS = Counter(
    "telemetry_ingest_deprecated_schema_events",
    "Events accepted under a deprecated schema revision.",
    ["schema", "version"],
)
REDACTIONS = Counter(
    "telemetry_redactions",
    "Field redactions applied to accepted events, by schema, field path and rule.",
    ["schema", "field", "action"],
)
PURGE_RUNS = Counter(
    "telemetry_purge_runs",
    "Retention purge runs, by event class and status.",
    ["event_class", "status"],
)
PURGE_ROWS = Counter(
    "telemetry_purge_rows_deleted", "Events removed by retention.", ["event_class"]
)
PURGE_PARTITIONS = Counter(
    "telemetry_purge_partitions_dropped", "Day partitions dropped by retention.", ["event_class"]
)
AUDIT_SEARCHES = Counter("telemetry_audit_searches", "Audit searches, exports, correlation lookups and denied attempts.", ["action"])
SCHEMA_REGISTRATIONS = Counter(
    "telemetry_schema_registrations",
    "Schema registrations: created, unchanged, or refused (by code).",
    ["outcome", "code"],
)
BATCH_SECONDS = Histogram(
    "telemetry_ingest_batch_seconds",
    "Time to process one ingest request (decode to commit).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def events_count(outcomes: Tally) -> None:
    """Add a batch's tally of (event_class, schema, outcome, code) to the counters."""
    for (event_class, schema, outcome, code), count in outcomes.items():
        EVENTS.labels(event_class, schema, outcome, code).inc(count)


@dataclass(frozen=True)
class CatalogueEntry:
    """One metric family the platform emits: its exposition name and type."""

    name: str
    type: str
    help: str = ""


PLATFORM_PREFIXES = ("telemetry_",)


def metric_catalogue() -> list[CatalogueEntry]:
    """Every metric family this platform emits (its own, and the catalogue's telemetry
    aggregates), as the conformance check sees it. Process/runtime families of the
    client library are left out: no rule should depend on them by accident."""
    from governance.models import MetricDefinition

    entries = {}
    for family in REGISTRY.collect():
        if family.name.startswith(PLATFORM_PREFIXES):
            entries[family.name] = CatalogueEntry(family.name, family.type, family.documentation)
    for definition in MetricDefinition.objects.filter(enabled=True):
        entries[definition.name] = CatalogueEntry(definition.name, definition.kind, definition.help)
    from .service_metrics import service_metric_names

    # Service counters that services have posted (service_metric events) are emitted too.
    for name, kind in service_metric_names().items():
        if name not in entries and not name.startswith(PLATFORM_PREFIXES):
            entries[name] = CatalogueEntry(name, kind)
    return sorted(entries.values(), key=lambda entry: entry.name)
