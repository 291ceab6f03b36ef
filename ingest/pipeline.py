"""The ingest pipeline: decode -> resolve schema -> validate -> envelope -> redact -> persist.

Plain functions over plain data; nothing here knows about HTTP. Errors that refuse
the whole request (``BatchError``) are kept apart from per-event rejections
(``Rejection``) and from errors worth retrying (``RetryableError``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from governance.choices import FieldRole
from governance.descriptors import locate_json_error
from governance.platform_protos import event_batch_class
from governance.redaction import redact_message
from governance.schemas import TIMESTAMP_TYPE
from governance.selectors import SchemaPlan, SchemaRefusal, schema_plans
from telemetry_platform.conf import telemetry_settings

from . import metrics
from .codes import BatchCode, RejectCode
from .telemetry_metrics import metrics_record

TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
MAX_IDENTIFIER_LENGTH = 200


class BatchError(Exception):
    """The request as a whole cannot be processed (answered 4xx, nothing stored)."""

    def __init__(self, code: str, message: str, *, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


class RetryableError(Exception):
    """The store is unavailable; the client should retry the whole batch later."""


@dataclass(frozen=True)
class KeyScope:
    """What an API key may send; an empty set allows anything."""

    sources: frozenset[str] = frozenset()
    surfaces: frozenset[str] = frozenset()
    event_classes: frozenset[str] = frozenset()
    schemas: tuple[str, ...] = ()

    def allows_schema(self, schema: str, event_class: str) -> bool:
        """Return True if the key may send events of ``schema`` (class ``event_class``)."""
        if self.event_classes and event_class not in self.event_classes:
            return False
        if not self.schemas:
            return True
        return any(
            schema.startswith(allowed[:-1]) if allowed.endswith("*") else schema == allowed
            for allowed in self.schemas
        )

    def allows_origin(self, source: str, surface: str) -> bool:
        """Return True if the key may send events from ``source`` and ``surface``."""
        if self.sources and source not in self.sources:
            return False
        return not self.surfaces or surface in self.surfaces


@dataclass(frozen=True)
class IngestContext:
    """Facts of the request that events inherit: the key's source and scope, request ids."""

    source: str
    request_id: str = ""
    received_at: datetime = dataclass_field(default_factory=lambda: datetime.now(UTC))
    scope: KeyScope = KeyScope()
    # From a valid W3C traceparent header; applied to events that carry no trace of their own.
    trace_id: str = ""


@dataclass(frozen=True)
class RawItem:
    """One event as decoded from the batch: its schema name and body (dict or bytes)."""

    schema: str
    body: Any


@dataclass(frozen=True)
class Rejection:
    code: str
    message: str
    field: str = ""


@dataclass
class PreparedEvent:
    """A validated, redacted event ready to be written."""

    event_class: str
    schema_revision_id: int
    schema_name: str
    schema_version: int
    source: str
    event_id: str
    occurred_at: datetime
    request_id: str
    trace_id: str
    actor_hash: str
    payload: dict[str, Any]
    warnings: list[str]
    redactions: list[tuple[str, str]] = dataclass_field(default_factory=list)
    metrics: tuple = ()

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        return (self.event_class, self.source, self.event_id, self.occurred_at)


@dataclass
class EventResult:
    index: int
    status: str
    event_id: str = ""
    code: str = ""
    field: str = ""
    message: str = ""
    warnings: list[str] = dataclass_field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.event_id:
            data["event_id"] = self.event_id
        if self.status == "rejected":
            data.update(code=self.code, field=self.field, message=self.message)
        if self.warnings:
            data["warnings"] = self.warnings
        return data


@dataclass
class BatchResult:
    results: list[EventResult]

    def totals(self) -> dict[str, int]:
        counts = {"received": len(self.results), "accepted": 0, "duplicate": 0, "rejected": 0}
        for result in self.results:
            counts[result.status] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {**self.totals(), "results": [r.as_dict() for r in self.results]}


# -- decode ---------------------------------------------------------------------------


def decode_json_batch(body: bytes, *, default_schema: str = "") -> list[RawItem]:
    """Decode ``{"events": [...]}``: self-describing items, or bare bodies of ``default_schema``.

    A top-level ``"schema"`` key works like ``?schema=``, so a client's existing
    fixture files post unchanged.
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BatchError(BatchCode.INVALID_ENCODING, "request body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BatchError(
            BatchCode.MALFORMED_JSON,
            f"request body is not valid JSON (line {exc.lineno}, column {exc.colno})",
        ) from None
    except RecursionError:
        raise BatchError(BatchCode.MALFORMED_JSON, "request body is nested too deeply") from None
    if not isinstance(document, dict):
        raise BatchError(BatchCode.NOT_AN_OBJECT, "request body must be a JSON object")
    if "events" not in document:
        raise BatchError(
            BatchCode.MISSING_EVENTS, "request body has no 'events' array", field="events"
        )
    events = document["events"]
    if not isinstance(events, list):
        raise BatchError(BatchCode.EVENTS_NOT_A_LIST, "'events' must be an array", field="events")
    top_schema = document.get("schema", "")
    if not isinstance(top_schema, str):
        raise BatchError(BatchCode.INVALID_SCHEMA_NAME, "'schema' must be a string", field="schema")
    bare_schema = default_schema or top_schema
    _check_batch_size(len(events))
    return [_json_item(item, bare_schema) for item in events]


def _json_item(item: Any, bare_schema: str) -> RawItem:
    if bare_schema:
        return RawItem(schema=bare_schema, body=item)
    if isinstance(item, dict) and set(item) == {"schema", "event"}:
        return RawItem(schema=item["schema"], body=item["event"])
    # Not self-describing: rejected per event, the rest of the batch goes on.
    return RawItem(schema="", body=item)


def decode_protobuf_batch(body: bytes, *, default_schema: str = "") -> list[RawItem]:
    """Decode a binary ``telemetry.v1.EventBatch``; items without a schema take ``default_schema``.

    Each item's ``event`` stays bytes here: it is parsed per event against its own
    schema, so one bad event does not spoil the batch.
    """
    batch = event_batch_class()()
    try:
        batch.ParseFromString(body)
    except DecodeError:
        raise BatchError(
            BatchCode.MALFORMED_PROTOBUF, "request body is not a telemetry.v1.EventBatch"
        ) from None
    _check_batch_size(len(batch.events))
    return [RawItem(schema=item.schema or default_schema, body=item.event) for item in batch.events]


def _check_batch_size(count: int) -> None:
    limit = telemetry_settings.MAX_EVENTS_PER_BATCH
    if count > limit:
        raise BatchError(
            BatchCode.TOO_MANY_EVENTS,
            f"batch has {count} events; at most {limit} are accepted per request",
            status=413,
            field="events",
        )
    if count == 0:
        raise BatchError(BatchCode.EMPTY_BATCH, "'events' is empty", field="events")


# -- per event ------------------------------------------------------------------------


def prepare_event(item: RawItem, context: IngestContext) -> PreparedEvent | Rejection:
    """Resolve the schema, validate, extract the envelope and redact one event."""
    if not isinstance(item.schema, str) or not item.schema:
        return Rejection(
            RejectCode.MISSING_SCHEMA,
            'each item must be {"schema": NAME, "event": {...}}, or pass ?schema=NAME',
            "schema",
        )
    name, _, pinned = item.schema.partition("@")
    if pinned and not pinned.isdigit():
        return Rejection(RejectCode.UNKNOWN_SCHEMA, "a pinned revision is NAME@VERSION", "schema")
    plan = schema_plans.get(name, int(pinned) if pinned else None)
    if plan is None:
        return Rejection(
            RejectCode.UNKNOWN_SCHEMA, "no schema is registered under this name", "schema"
        )
    if isinstance(plan, SchemaRefusal):
        return Rejection(plan.code, plan.message, "schema")
    if not context.scope.allows_schema(plan.schema_name, plan.event_class):
        return Rejection(
            RejectCode.FORBIDDEN_SCHEMA, "this API key may not send events of this schema", "schema"
        )
    message = validate_event(plan, item.body)
    if isinstance(message, Rejection):
        return message
    if message.ByteSize() > telemetry_settings.MAX_EVENT_BYTES:
        return Rejection(
            RejectCode.EVENT_TOO_LARGE,
            f"event is larger than {telemetry_settings.MAX_EVENT_BYTES} bytes",
        )
    # Redact before anything else reads the values: the envelope, the derived id and
    # the stored payload all see only the redacted message.
    outcome = redact_message(plan.redaction, message)
    if outcome.rejection is not None:
        rejection = outcome.rejection
        return Rejection(rejection.code, rejection.message, rejection.field)
    prepared = _envelope(plan, message, context)
    if isinstance(prepared, PreparedEvent):
        prepared.redactions = outcome.redactions
        prepared.metrics = plan.metrics
    return prepared


def validate_event(plan: SchemaPlan, body: Any) -> Message | Rejection:
    """Parse ``body`` (proto3 JSON dict, or bytes of the binary form) into the plan's message."""
    message = plan.compiled.message_class()
    if isinstance(body, bytes):
        try:
            message.ParseFromString(body)
        except DecodeError:
            return Rejection(
                RejectCode.INVALID_EVENT, "event bytes are not a valid message of this schema"
            )
        size = message.ByteSize()
        message.DiscardUnknownFields()
        if message.ByteSize() != size:
            return Rejection(
                RejectCode.UNKNOWN_FIELD,
                f"event carries field numbers that revision {plan.version} does not define",
            )
        return message
    if not isinstance(body, dict):
        return Rejection(RejectCode.NOT_AN_OBJECT, "event must be a JSON object")
    fast = plan.json_parser(body)
    if fast is not None:
        return fast
    try:
        json_format.ParseDict(body, message)
    except Exception:  # ParseError, but also OverflowError/AttributeError on odd input
        # The library's messages can quote the offending value: never pass them on.
        return _locate(plan, body)
    return message


def _locate(plan: SchemaPlan, body: dict[str, Any]) -> Rejection:
    issue = locate_json_error(plan.compiled.descriptor, body)
    return Rejection(issue.code, issue.message, issue.field)


def _role_value(message: Message, path: str) -> Any:
    value: Any = message
    parts = path.split(".")
    for part in parts[:-1]:
        if not value.HasField(part):
            return None
        value = getattr(value, part)
    return getattr(value, parts[-1])


def _occurred_at(plan: SchemaPlan, message: Message) -> datetime | Rejection:
    path = plan.roles[FieldRole.OCCURRED_AT]
    value = _role_value(message, path)
    missing = Rejection(RejectCode.MISSING_FIELD, "occurred-at is required", path)
    if value is None:
        return missing
    if isinstance(value, Message):
        if value.DESCRIPTOR.full_name != TIMESTAMP_TYPE or not (value.seconds or value.nanos):
            return missing
        return value.ToDatetime(tzinfo=UTC)
    if not value:
        return missing
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return Rejection(RejectCode.OUT_OF_RANGE, "occurred-at is not a representable time", path)


def _text_role(plan: SchemaPlan, message: Message, role: str) -> str:
    path = plan.roles.get(role)
    if not path:
        return ""
    value = _role_value(message, path)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        # Enum-typed roles such as a client surface: store the value's name.
        field_descriptor = _leaf_field(message, path)
        if field_descriptor is not None and field_descriptor.enum_type is not None:
            enum_value = field_descriptor.enum_type.values_by_number.get(value)
            return enum_value.name if enum_value else str(value)
    return str(value)


def _leaf_field(message: Message, path: str):
    descriptor = message.DESCRIPTOR
    parts = path.split(".")
    for part in parts[:-1]:
        descriptor = descriptor.fields_by_name[part].message_type
    return descriptor.fields_by_name.get(parts[-1])


def _trace_id(traceparent: str) -> str:
    match = TRACEPARENT_RE.match(traceparent)
    if not match or match.group(2) == "0" * 32:
        return ""
    return match.group(2)


def _time_window_check(
    plan: SchemaPlan, occurred_at: datetime, context: IngestContext
) -> Rejection | None:
    path = plan.roles[FieldRole.OCCURRED_AT]
    skew = timedelta(seconds=telemetry_settings.MAX_FUTURE_SKEW_SECONDS)
    if occurred_at > context.received_at + skew:
        return Rejection(
            RejectCode.CLOCK_SKEW,
            f"occurred-at is more than {int(skew.total_seconds())}s in the future",
            path,
        )
    if occurred_at < context.received_at - timedelta(days=plan.retention_days):
        return Rejection(
            RejectCode.EXPIRED,
            f"occurred-at is older than the {plan.event_class} retention "
            f"({plan.retention_days} days)",
            path,
        )
    return None


def _envelope(
    plan: SchemaPlan, message: Message, context: IngestContext
) -> PreparedEvent | Rejection:
    occurred_at = _occurred_at(plan, message)
    if isinstance(occurred_at, Rejection):
        return occurred_at
    window = _time_window_check(plan, occurred_at, context)
    if window is not None:
        return window
    event_id = _text_role(plan, message, FieldRole.EVENT_ID)
    if FieldRole.EVENT_ID in plan.roles and not event_id:
        return Rejection(
            RejectCode.MISSING_FIELD, "event id is required", plan.roles[FieldRole.EVENT_ID]
        )
    source = _text_role(plan, message, FieldRole.SOURCE) or context.source
    surface = _text_role(plan, message, FieldRole.SURFACE)
    if not context.scope.allows_origin(source, surface):
        return Rejection(
            RejectCode.FORBIDDEN_SOURCE,
            "this API key may not send events for this source or surface",
            plan.roles.get(FieldRole.SOURCE) or plan.roles.get(FieldRole.SURFACE, ""),
        )
    for role, value in ((FieldRole.EVENT_ID, event_id), (FieldRole.SOURCE, source)):
        if len(value) > MAX_IDENTIFIER_LENGTH:
            return Rejection(
                RejectCode.TOO_LONG,
                f"longer than {MAX_IDENTIFIER_LENGTH} characters",
                plan.roles.get(role, role),
            )
    if not event_id:
        # No event-id field (e.g. the control service's audit events): derive one from
        # the canonical serialisation, so an exact retransmission still deduplicates.
        digest = hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()
        event_id = f"sha256:{digest}"
    payload = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return PreparedEvent(
        event_class=plan.event_class,
        schema_revision_id=plan.revision_id,
        schema_name=plan.schema_name,
        schema_version=plan.version,
        source=source,
        event_id=event_id,
        occurred_at=occurred_at,
        request_id=_text_role(plan, message, FieldRole.REQUEST_ID)[:MAX_IDENTIFIER_LENGTH],
        trace_id=_trace_id(_text_role(plan, message, FieldRole.TRACEPARENT)) or context.trace_id,
        actor_hash=_text_role(plan, message, FieldRole.ACTOR)[:MAX_IDENTIFIER_LENGTH],
        payload=payload,
        warnings=["schema revision is deprecated"] if plan.deprecated else [],
    )


# -- persist --------------------------------------------------------------------------

INSERT_COLUMNS = (
    "event_class",
    "schema_revision_id",
    "source",
    "event_id",
    "occurred_at",
    "received_at",
    "request_id",
    "trace_id",
    "actor_hash",
    "ingest_request_id",
    "payload",
    "redactions",
    "chain_seq",
    "chain_prev",
    "chain_link",
)
# One array parameter per column, unnested server-side: 15 parameters whatever the batch
# size, instead of 15 per row (binding and parsing thousands of placeholders cost more
# than the insert itself).
COLUMN_TYPES = (
    "varchar",
    "bigint",
    "varchar",
    "varchar",
    "timestamptz",
    "timestamptz",
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "jsonb",
    "jsonb",
    "bigint",
    "varchar",
    "varchar",
)
INSERT_SQL = (
    f"INSERT INTO ingest_event ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 (constants)
    "SELECT * FROM unnest("
    + ", ".join(f"%s::{kind}[]" for kind in COLUMN_TYPES)
    + ") ON CONFLICT DO NOTHING RETURNING event_class, source, event_id, occurred_at"
)
AUDIT_EVENT_CLASS = "audit_event"
ChainPosition = tuple[int, str, str]  # (sequence number, previous link, link)


def insert_events(
    events: Sequence[PreparedEvent],
    context: IngestContext,
    chain: dict[tuple, ChainPosition] | None = None,
) -> set[tuple]:
    """Insert ``events`` in one statement; return the keys that were new (the rest duplicates).

    The unique constraint decides what is a duplicate, so concurrent batches carrying
    the same event cannot both store it. Runs inside the caller's transaction.
    """
    if not events:
        return set()
    chain = chain or {}
    no_link = (None, None, None)
    rows = [
        (
            event.event_class,
            event.schema_revision_id,
            event.source,
            event.event_id,
            event.occurred_at,
            context.received_at,
            event.request_id,
            event.trace_id,
            event.actor_hash,
            context.request_id,
            json.dumps(event.payload, separators=(",", ":")),
            json.dumps(event.redactions, separators=(",", ":")),
            *chain.get(event.key, no_link),
        )
        for event in events
    ]
    columns = [list(column) for column in zip(*rows, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL, columns)
        return {tuple(row) for row in cursor.fetchall()}


def persist_events(events: Sequence[PreparedEvent], context: IngestContext) -> set[tuple]:
    """Store a batch: audit events through the audit chain, the rest in one insert."""
    from audit.services import audit_events_append

    audit = [event for event in events if event.event_class == AUDIT_EVENT_CLASS]
    others = [event for event in events if event.event_class != AUDIT_EVENT_CLASS]
    inserted = insert_events(others, context)
    if audit:
        inserted |= audit_events_append(audit, context)
    return inserted


# -- the whole batch ------------------------------------------------------------------


def ingest_batch(items: Iterable[RawItem], context: IngestContext) -> BatchResult:
    """Validate and store a batch; answer per event, in order.

    Acceptance is reported only after the transaction commits; a database failure
    raises RetryableError and nothing of the batch is acknowledged.
    """
    schema_plans.refresh()
    results: list[EventResult] = []
    labels: list[tuple[str, str]] = []
    to_store: dict[tuple, tuple[PreparedEvent, EventResult]] = {}
    for index, item in enumerate(items):
        labels.append(_metric_labels(item))
        prepared = prepare_event(item, context)
        if isinstance(prepared, Rejection):
            results.append(
                EventResult(
                    index,
                    "rejected",
                    code=prepared.code,
                    field=prepared.field,
                    message=prepared.message,
                )
            )
            continue
        result = EventResult(
            index, "duplicate", event_id=prepared.event_id, warnings=prepared.warnings
        )
        results.append(result)
        to_store.setdefault(prepared.key, (prepared, result))
    try:
        with transaction.atomic():
            if to_store:
                _statement_timeout(telemetry_settings.DB_STATEMENT_TIMEOUT_MS)
            inserted = persist_events([event for event, _ in to_store.values()], context)
    except (OperationalError, InterfaceError) as exc:
        raise RetryableError("the event store is unavailable") from exc
    except DatabaseError as exc:
        raise RetryableError("the event store refused the batch") from exc
    for key, (prepared, result) in to_store.items():
        if key in inserted:
            result.status = "accepted"
            if prepared.warnings:
                metrics.DEPRECATED_SCHEMA_EVENTS.labels(
                    prepared.schema_name, str(prepared.schema_version)
                ).inc()
            for path, rule in prepared.redactions:
                metrics.REDACTIONS.labels(prepared.schema_name, path, rule).inc()
    _count(results, labels)
    metrics_record(
        (metric, *observation)
        for key, (prepared, _) in to_store.items()
        if key in inserted
        for metric in prepared.metrics
        if (observation := metric.observe(prepared.payload)) is not None
    )
    return BatchResult(results)


def _statement_timeout(milliseconds: int) -> None:
    # A slow or locked store must answer 503 quickly rather than hold the client.
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{milliseconds}ms"])


def _metric_labels(item: RawItem) -> tuple[str, str]:
    # Only registered names become label values: an unknown name must not mint a series.
    name = item.schema if isinstance(item.schema, str) else ""
    event_class = schema_plans.event_class_of(name) if name else None
    if event_class is None:
        return "unknown", "unknown"
    return event_class, name.partition("@")[0]


def _count(results: list[EventResult], labels: list[tuple[str, str]]) -> None:
    tally: Counter = Counter()
    for result, (event_class, schema) in zip(results, labels, strict=True):
        tally[(event_class, schema, result.status, result.code)] += 1
    metrics.events_count(tally)
