"""Prometheus metrics of audit search (exposed on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

AUDIT_SEARCHES = Counter(
    "telemetry_audit_searches",
    "Audit searches, exports, correlation lookups and denied attempts.",
    ["action"],
)
