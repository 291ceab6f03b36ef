"""The ingest pipeline: decode -> prepare -> store -> count, each a step of its own module.

Every way in (the events API, artifacts, the platform's own audit events, and later OTLP
and capture endpoints) decodes its body into ``RawItem``s and calls ``ingest_batch``:

- ``decode``: the body into raw items (pure);
- ``prepare``: per event, resolve the schema, validate, redact, read the envelope, check
  skew, scope and retention (pure; the schema resolver is handed in);
- ``store``: one transaction for the batch, deduplicated by the unique key, audit events
  chained (the only step that touches the connection);
- ``count``: the outcome counters and telemetry aggregates (one Redis round trip).

Errors that refuse the whole request (``BatchError``, a code) are kept apart from
per-event rejections (``Rejection``), from failures worth retrying (``RetryableError``)
and from store refusals a retry cannot change (``StoreRefusedError``).
"""

from __future__ import annotations

from collections.abc import Iterable

from governance.selectors import schema_plans

from ..service_metrics import SERVICE_METRIC_SCHEMAS
from . import count, prepare, store, tally
from .decode import decode_json_batch, decode_protobuf_batch
from .prepare import BatchRules, validate_event
from .store import insert_events, persist_events
from .types import (
    BatchError,
    BatchResult,
    EventResult,
    IngestContext,
    KeyScope,
    PreparedEvent,
    RawItem,
    Rejection,
    RetryableError,
    StoreRefusedError,
)

__all__ = [
    "BatchError",
    "BatchResult",
    "BatchRules",
    "EventResult",
    "IngestContext",
    "KeyScope",
    "PreparedEvent",
    "RawItem",
    "Rejection",
    "RetryableError",
    "StoreRefusedError",
    "batch_rules",
    "decode_json_batch",
    "decode_protobuf_batch",
    "ingest_batch",
    "insert_events",
    "persist_events",
    "prepare_event",
    "schema_plans",
    "validate_event",
]

DEFAULT_SERVICE_METRIC_RETENTION_DAYS = 90


def batch_rules(context: IngestContext) -> BatchRules:
    """The rules one batch of ``context`` is prepared under, resolving through the plan cache."""
    return BatchRules(context, schema_plans)


def prepare_event(
    item: RawItem, context: IngestContext, rules: BatchRules | None = None
) -> PreparedEvent | Rejection:
    """Prepare one event under ``rules`` (by default, the plan cache's as they stand)."""
    return prepare.prepare_event(item, context, rules or batch_rules(context))


def ingest_batch(items: Iterable[RawItem], context: IngestContext) -> BatchResult:
    """Validate and store a batch; answer per event, in order.

    Acceptance is reported only after the transaction commits; a failure of the store
    raises RetryableError (or StoreRefusedError) and nothing of the batch is acknowledged.
    """
    schema_plans.refresh()
    rules = batch_rules(context)
    labels: list[tuple[str, str]] = []
    outcomes: list[PreparedEvent | Rejection] = []
    versions: list[str] = []
    for item in items:
        resolved = rules.resolve(item.schema)
        labels.append(resolved.labels)
        outcome = prepare.prepare_event(item, context, rules)
        outcomes.append(outcome)
        versions.append(
            tally.app_version_of(resolved.plan, item.body) if type(outcome) is Rejection else ""
        )
    # The first of several identical events in one batch is the one stored.
    first: dict[tuple, PreparedEvent] = {}
    for outcome in outcomes:
        if type(outcome) is PreparedEvent:
            first.setdefault(outcome.key, outcome)
    inserted = store.batch_store(
        list(first.values()), context, tally.batch_tally(context, outcomes, labels, versions)
    )
    results, accepted = _answers(outcomes, first, inserted)
    count.batch_count(
        results, labels, accepted, service_metric_ttl_seconds=_service_metric_ttl(accepted)
    )
    return BatchResult(results)


def _answers(
    outcomes: list[PreparedEvent | Rejection],
    first: dict[tuple, PreparedEvent],
    inserted: set[tuple],
) -> tuple[tuple[EventResult, ...], list[PreparedEvent]]:
    results: list[EventResult] = []
    accepted: list[PreparedEvent] = []
    for index, outcome in enumerate(outcomes):
        if type(outcome) is Rejection:
            results.append(
                EventResult(
                    index,
                    "rejected",
                    code=outcome.code,
                    field=outcome.field,
                    message=outcome.message,
                )
            )
            continue
        stored = outcome.key in inserted and first[outcome.key] is outcome
        if stored:
            accepted.append(outcome)
        results.append(
            EventResult(
                index,
                "accepted" if stored else "duplicate",
                event_id=outcome.event_id,
                warnings=outcome.warnings,
            )
        )
    return tuple(results), accepted


def _service_metric_ttl(accepted: list[PreparedEvent]) -> int:
    """Service counter series expire with their events: the service_metric retention."""
    days = DEFAULT_SERVICE_METRIC_RETENTION_DAYS
    for event in accepted:
        if event.schema_name in SERVICE_METRIC_SCHEMAS:
            plan = schema_plans.get(event.schema_name)
            days = getattr(plan, "retention_days", days)
            break
    return max(1, int(days)) * 86400
