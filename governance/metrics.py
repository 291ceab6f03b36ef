"""Prometheus metrics of governance (exposed on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

SCHEMA_REGISTRATIONS = Counter(
    "telemetry_schema_registrations",
    "Schema registrations: created, unchanged, or refused (by code).",
    ["outcome", "code"],
)
