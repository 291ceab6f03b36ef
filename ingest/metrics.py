"""Prometheus metrics of ingest (exposed on /metrics)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Histogram

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
BATCH_SECONDS = Histogram(
    "telemetry_ingest_batch_seconds",
    "Time to process one ingest request (decode to commit).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def events_count(outcomes: Tally) -> None:
    """Add a batch's tally of (event_class, schema, outcome, code) to the counters."""
    for (event_class, schema, outcome, code), count in outcomes.items():
        EVENTS.labels(event_class, schema, outcome, code).inc(count)
