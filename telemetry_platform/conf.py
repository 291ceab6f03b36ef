"""The platform's own settings (``TELEMETRY_*``): defaults here, overridable in Django settings."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings as django_settings

from .env import env_int, env_str

DEFAULTS: dict[str, Any] = {
    # Largest request body accepted by POST /api/v1/events, in bytes (413 beyond it).
    "MAX_BODY_BYTES": 5 * 1024 * 1024,
    # Most events accepted in one batch (413 beyond it).
    "MAX_EVENTS_PER_BATCH": 1000,
    # Largest body after gzip decompression (413 beyond it): guards against zip bombs.
    "MAX_DECOMPRESSED_BYTES": 20 * 1024 * 1024,
    # Largest single event (JSON: its re-encoded size; binary: its bytes), rejected per event.
    "MAX_EVENT_BYTES": 64 * 1024,
    # How far in the future an event's occurred-at may be (clock skew), in seconds.
    "MAX_FUTURE_SKEW_SECONDS": 300,
    # Default per-key rate limit in events per second (0 switches limits off), and how many
    # seconds' worth of events a key may send at once (the bucket size).
    "RATE_LIMIT_EVENTS_PER_SECOND": 2000.0,
    "RATE_LIMIT_BURST_SECONDS": 5.0,
    # Per-key limit in request-body bytes per second (after gzip; 0 switches it off), with
    # the same burst: scanning cost grows with size, so bytes are limited as well as events.
    "RATE_LIMIT_BYTES_PER_SECOND": 2 * 1024 * 1024,
    # Statement timeout of the ingest transaction; beyond it the client gets 503.
    "DB_STATEMENT_TIMEOUT_MS": 5000,
    # Day partitions created ahead of today, per class.
    "PARTITION_DAYS_AHEAD": 7,
    # Pause between purge batches (seconds), to leave the database breathing room.
    "PURGE_BATCH_PAUSE_SECONDS": 0.0,
    # Guard rails: event class -> (minimum, maximum) retention days; "*" for the others.
    "RETENTION_LIMITS": {"audit_event": (90, 3650), "*": (1, 3650)},
    # Rows deleted per statement (and per transaction) by the retention purge.
    "PURGE_BATCH_SIZE": 10_000,
    # How often (seconds) a process checks whether schemas or policies changed.
    "PLAN_REFRESH_SECONDS": 1.0,
    # How long a process reuses a verified API key's row (seconds; 0: read it every request).
    # A revocation, expiry or scope change made elsewhere takes effect within this bound.
    "API_KEY_CACHE_SECONDS": float(env_str("TELEMETRY_API_KEY_CACHE_SECONDS", "1")),
    # Keys for keyed hashes: key id -> secret. The active key hashes new data.
    "HASH_KEYS": {"k1": "dev-insecure-hash-key-change-me"},
    "HASH_KEY_ID": "k1",
    # Keys of the audit chain heads' digests and of the daily digest files (key id -> secret),
    # kept apart from the hash keys; the active id signs new digests.
    "AUDIT_DIGEST_KEYS": {"d1": "dev-insecure-audit-digest-key-change-me"},
    "AUDIT_DIGEST_KEY_ID": "d1",
    # Directory the daily audit digest files are written to (empty: not exported).
    "AUDIT_DIGEST_DIR": "",
    # Fields with no classification: "drop" them (default) or "reject" the event.
    "UNCLASSIFIED_FIELDS": "drop",
    # A pseudonymous id kept as-is that is not a hash: "reject" the event or "hash" it.
    "UNHASHED_PSEUDONYM": "reject",
    # Map keys whose values are redacted whatever they hold.
    "SENSITIVE_KEY_PATTERN": (
        r"(?i)(pass(word|wd)?|secret|token|authorization|api[_-]?key|private[_-]?key"
        r"|credential|cookie|session[_-]?key)"
    ),
    # -- policy review (read from the environment here, not in settings.py)
    # A policy whose last review or approved change is older than this is due for review.
    "POLICY_REVIEW_DAYS": env_int("TELEMETRY_POLICY_REVIEW_DAYS", 90),
    # A field-policy change request previews this many of the schema's latest stored events.
    "CHANGE_PREVIEW_EVENTS": env_int("TELEMETRY_CHANGE_PREVIEW_EVENTS", 5),
    # -- artifacts and service counters (read from the environment here, not in settings.py)
    # Regression list: the latest build's value against the median of this many earlier builds.
    "PERF_REGRESSION_BASELINE_BUILDS": env_int("TELEMETRY_PERF_REGRESSION_BASELINE_BUILDS", 5),
    # ... flagged when worse (higher) than that median by more than this percentage.
    "PERF_REGRESSION_THRESHOLD_PERCENT": float(
        env_str("TELEMETRY_PERF_REGRESSION_THRESHOLD_PERCENT", "10")
    ),
    # Most recent builds drawn per metric path on the trends page.
    "PERF_TREND_MAX_BUILDS": env_int("TELEMETRY_PERF_TREND_MAX_BUILDS", 50),
    # Sign-off budget names that do not follow the metric path: budget name -> metric path.
    # (Others match a path's trailing segments joined by "_", e.g. root_p95_ms -> boot.root.p95_ms.)
    "PERF_BUDGET_ALIASES": json.loads(
        env_str(
            "TELEMETRY_PERF_BUDGET_ALIASES",
            json.dumps(
                {
                    "wasm_p95_ms": "boot.wasm_asset.p95_ms",
                    "rss_growth_kb": "soak.rss_kb.growth",
                    "js_asset_bytes": "boot.asset_sizes.js_bytes",
                    "wasm_asset_bytes": "boot.asset_sizes.wasm_bytes",
                }
            ),
        )
    ),
    # Service counters on /metrics: label sets per metric name beyond this fold into one
    # series, and at most this many metric names are exposed.
    "SERVICE_METRIC_MAX_SERIES": env_int("TELEMETRY_SERVICE_METRIC_MAX_SERIES", 1000),
    "SERVICE_METRIC_MAX_NAMES": env_int("TELEMETRY_SERVICE_METRIC_MAX_NAMES", 500),
    # Name prefix of the service_metric events made from delivery diagnostics snapshots.
    "DIAGNOSTICS_METRIC_PREFIX": env_str("TELEMETRY_DIAGNOSTICS_METRIC_PREFIX", "khala.delivery"),
}


class TelemetrySettings:
    """Looks a name up as ``TELEMETRY_<NAME>`` in Django settings, falling back to DEFAULTS."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"unknown platform setting {name!r}")
        return getattr(django_settings, f"TELEMETRY_{name}", DEFAULTS[name])


telemetry_settings = TelemetrySettings()
