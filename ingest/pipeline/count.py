"""Count a stored batch: Prometheus counters per outcome, and the Redis-held aggregates of
client telemetry and service counters, in one Redis round trip. Never fails ingest."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import redis

from telemetry_platform.redis_client import redis_client

from .. import metrics
from ..service_metrics import service_metrics_outcomes, service_metrics_queue
from ..telemetry_metrics import metrics_queue
from .types import EventResult, PreparedEvent

logger = logging.getLogger(__name__)


def batch_count(
    results: Sequence[EventResult],
    labels: Sequence[tuple[str, str]],
    accepted: Sequence[PreparedEvent],
    *,
    service_metric_ttl_seconds: int,
) -> None:
    """Count every event's outcome under its (class, schema) labels, and aggregate what the
    accepted events carry (a retransmitted duplicate is not counted twice)."""
    # Tallied per batch, then one increment per label set: a labelled increment costs
    # microseconds (label lookup, multiprocess value file), too much to pay per event.
    tally: Counter = Counter()
    for result, (event_class, schema) in zip(results, labels, strict=True):
        tally[(event_class, schema, result.status, result.code)] += 1
    metrics.events_count(tally)
    deprecated: Counter = Counter()
    redactions: Counter = Counter()
    for event in accepted:
        if event.warnings:
            deprecated[(event.schema_name, str(event.schema_version))] += 1
        for path, rule in event.redactions:
            redactions[(event.schema_name, path, rule)] += 1
    for labelset, count in deprecated.items():
        metrics.DEPRECATED_SCHEMA_EVENTS.labels(*labelset).inc(count)
    for labelset, count in redactions.items():
        metrics.REDACTIONS.labels(*labelset).inc(count)
    observations = [
        (metric, *observation)
        for event in accepted
        for metric in event.metrics
        if (observation := metric.observe(event.payload)) is not None
    ]
    _aggregates_record(observations, accepted, service_metric_ttl_seconds)


def _aggregates_record(
    observations: list, accepted: Sequence[PreparedEvent], ttl_seconds: int
) -> None:
    try:
        # Queuing costs no round trip; a batch with nothing to aggregate sends nothing.
        pipe = redis_client().pipeline(transaction=False)
        aggregates = metrics_queue(pipe, observations)
        services = service_metrics_queue(pipe, accepted, ttl_seconds=ttl_seconds)
        if aggregates or services:
            outcomes = pipe.execute()
            service_metrics_outcomes(outcomes[aggregates:])
    except redis.RedisError as exc:
        logger.warning("telemetry aggregates not recorded (%s)", type(exc).__name__)
