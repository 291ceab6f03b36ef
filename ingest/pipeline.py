"""The ingest pipeline: decode -> resolve schema -> validate -> envelope -> redact -> persist.

Plain functions over plain data; nothing here knows about HTTP. Errors that refuse
the whole request (``BatchError``) are kept apart from per-event rejections
(``Rejection``) and from errors worth retrying (``RetryableError``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import re
import sys
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from psycopg.types.datetime import TimestamptzLoader

from governance.choices import FieldRole
from governance.descriptors import locate_json_error
from governance.platform_protos import event_batch_class
from governance.redaction import redact_message
from governance.schemas import TIMESTAMP_TYPE
from governance.selectors import SchemaPlan, SchemaRefusal, schema_plans
from telemetry_platform.conf import telemetry_settings

from . import metrics
from .codes import BatchCode, RejectCode
from .envelope import EnvelopeReader, envelope_reader_compile
from .service_metrics import service_metrics_record
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


@dataclass(slots=True)
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
    payload_json: str = ""  # the payload encoded once, as stored

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        return (self.event_class, self.source, self.event_id, self.occurred_at)


@dataclass(slots=True)
class EventResult:
    index: int
    status: str
    event_id: str = ""
    code: str = ""
    field: str = ""
    message: str = ""
    warnings: list[str] = dataclass_field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        if self.event_id and not self.warnings and self.status != "rejected":
            return {"index": self.index, "status": self.status, "event_id": self.event_id}
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
    except ValueError:
        # Python refuses to convert integer literals beyond sys.get_int_max_str_digits().
        raise BatchError(
            BatchCode.NUMBER_TOO_LONG,
            f"request body holds a number of more than {sys.get_int_max_str_digits()} digits",
        ) from None
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


class BatchLimits:
    """The limits one batch is checked against, read from settings once per batch, and
    what the batch resolved each schema name to (plans do not change within a batch)."""

    __slots__ = (
        "future_limit",
        "max_event_bytes",
        "oldest",
        "received_at",
        "resolved",
        "skew_seconds",
    )

    def __init__(self, context: IngestContext) -> None:
        skew = timedelta(seconds=telemetry_settings.MAX_FUTURE_SKEW_SECONDS)
        self.max_event_bytes: int = telemetry_settings.MAX_EVENT_BYTES
        self.skew_seconds = int(skew.total_seconds())
        self.received_at = context.received_at
        self.future_limit = context.received_at + skew
        self.oldest: dict[int, datetime] = {}  # retention days -> oldest acceptable time
        self.resolved: dict[str, SchemaPlan | Rejection] = {}  # schema name -> plan or why not

    def oldest_for(self, retention_days: int) -> datetime:
        oldest = self.oldest.get(retention_days)
        if oldest is None:
            oldest = self.oldest[retention_days] = self.received_at - timedelta(days=retention_days)
        return oldest


def prepare_event(
    item: RawItem, context: IngestContext, limits: BatchLimits | None = None
) -> PreparedEvent | Rejection:
    """Resolve the schema, validate, extract the envelope and redact one event."""
    if limits is None:
        limits = BatchLimits(context)
    schema = item.schema
    plan = limits.resolved.get(schema) if type(schema) is str else None
    if plan is None:
        plan = _resolve_schema(schema, context)
        if type(schema) is str:
            limits.resolved[schema] = plan
    if isinstance(plan, Rejection):
        return plan
    message = validate_event(plan, item.body)
    if isinstance(message, Rejection):
        return message
    if message.ByteSize() > limits.max_event_bytes:
        return Rejection(
            RejectCode.EVENT_TOO_LARGE,
            f"event is larger than {limits.max_event_bytes} bytes",
        )
    # Redact before anything else reads the values: the envelope, the derived id and
    # the stored payload all see only the redacted message.
    outcome = redact_message(plan.redaction, message)
    if outcome.rejection is not None:
        rejection = outcome.rejection
        return Rejection(rejection.code, rejection.message, rejection.field)
    prepared = _envelope(plan, message, context, limits)
    if isinstance(prepared, PreparedEvent):
        prepared.redactions = outcome.redactions
        prepared.metrics = plan.metrics
    return prepared


def _resolve_schema(schema: Any, context: IngestContext) -> SchemaPlan | Rejection:
    """The plan that validates events named ``schema``, or why none may."""
    if not isinstance(schema, str) or not schema:
        return Rejection(
            RejectCode.MISSING_SCHEMA,
            'each item must be {"schema": NAME, "event": {...}}, or pass ?schema=NAME',
            "schema",
        )
    name, _, pinned = schema.partition("@")
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
    return plan


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


# Compiled role getters per plan (by identity; a new epoch brings new plans).
_readers: dict[int, tuple[SchemaPlan, EnvelopeReader]] = {}
_READERS_MAX = 256


def _reader(plan: SchemaPlan) -> EnvelopeReader:
    entry = _readers.get(id(plan))
    if entry is None or entry[0] is not plan:
        if len(_readers) >= _READERS_MAX:
            _readers.clear()
        entry = _readers[id(plan)] = (plan, envelope_reader_compile(plan))
    return entry[1]


def _occurred_at(plan: SchemaPlan, value: Any) -> datetime | Rejection:
    if value is None:
        return _missing_occurred_at(plan)
    if isinstance(value, Message):
        if value.DESCRIPTOR.full_name != TIMESTAMP_TYPE or not (value.seconds or value.nanos):
            return _missing_occurred_at(plan)
        return value.ToDatetime(tzinfo=UTC)
    if not value:
        return _missing_occurred_at(plan)
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return Rejection(
            RejectCode.OUT_OF_RANGE,
            "occurred-at is not a representable time",
            plan.roles[FieldRole.OCCURRED_AT],
        )


def _missing_occurred_at(plan: SchemaPlan) -> Rejection:
    return Rejection(
        RejectCode.MISSING_FIELD, "occurred-at is required", plan.roles[FieldRole.OCCURRED_AT]
    )


def _trace_id(traceparent: str) -> str:
    if not traceparent:
        return ""
    match = TRACEPARENT_RE.match(traceparent)
    if not match or match.group(2) == "0" * 32:
        return ""
    return match.group(2)


def _time_window_check(
    plan: SchemaPlan, occurred_at: datetime, limits: BatchLimits
) -> Rejection | None:
    if occurred_at > limits.future_limit:
        return Rejection(
            RejectCode.CLOCK_SKEW,
            f"occurred-at is more than {limits.skew_seconds}s in the future",
            plan.roles[FieldRole.OCCURRED_AT],
        )
    if occurred_at < limits.oldest_for(plan.retention_days):
        return Rejection(
            RejectCode.EXPIRED,
            f"occurred-at is older than the {plan.event_class} retention "
            f"({plan.retention_days} days)",
            plan.roles[FieldRole.OCCURRED_AT],
        )
    return None


def _envelope(
    plan: SchemaPlan, message: Message, context: IngestContext, limits: BatchLimits
) -> PreparedEvent | Rejection:
    reader = _reader(plan)
    occurred_at = _occurred_at(plan, reader.occurred_at(message))
    if isinstance(occurred_at, Rejection):
        return occurred_at
    window = _time_window_check(plan, occurred_at, limits)
    if window is not None:
        return window
    text = reader.text
    event_id = text[FieldRole.EVENT_ID](message)
    if not event_id and FieldRole.EVENT_ID in plan.roles:
        return Rejection(
            RejectCode.MISSING_FIELD, "event id is required", plan.roles[FieldRole.EVENT_ID]
        )
    source = text[FieldRole.SOURCE](message) or context.source
    surface = text[FieldRole.SURFACE](message)
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
    render = plan.dict_renderer
    payload = (
        render(message)
        if render is not None
        else json_format.MessageToDict(message, preserving_proto_field_name=True)
    )
    payload_json = _json_dumps(payload)
    request_id = text[FieldRole.REQUEST_ID](message)[:MAX_IDENTIFIER_LENGTH]
    actor_hash = text[FieldRole.ACTOR](message)[:MAX_IDENTIFIER_LENGTH]
    if "\\u0000" in payload_json or "\x00" in source + event_id + request_id + actor_hash:
        # PostgreSQL stores no NUL character (text or jsonb): refuse this event, not the batch.
        return Rejection(RejectCode.INVALID_VALUE, NUL_MESSAGE, _nul_path(payload))
    return PreparedEvent(
        event_class=plan.event_class,
        schema_revision_id=plan.revision_id,
        schema_name=plan.schema_name,
        schema_version=plan.version,
        source=source,
        event_id=event_id,
        occurred_at=occurred_at,
        request_id=request_id,
        trace_id=_trace_id(text[FieldRole.TRACEPARENT](message)) or context.trace_id,
        actor_hash=actor_hash,
        payload=payload,
        payload_json=payload_json,
        warnings=["schema revision is deprecated"] if plan.deprecated else [],
    )


NUL_MESSAGE = "contains a NUL character (\\u0000), which cannot be stored"


def _nul_path(value: Any, path: str = "") -> str:
    """The dotted path of the first string (or map key) holding a NUL character."""
    if isinstance(value, str):
        return path if "\x00" in value else ""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            if found := _nul_path(item, here):
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if found := _nul_path(item, f"{path}[{index}]"):
                return found
    return ""


# -- persist --------------------------------------------------------------------------

_stdlib_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _json_dumps(value: Any) -> str:
    """Compact JSON text of a payload or redaction record, for a jsonb column.

    orjson is five times the standard encoder here; the stored jsonb is the same either
    way. Values orjson refuses (integers beyond 64 bits, say) take the standard path.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _stdlib_dumps(value)


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
# Rows are COPied (binary) into a per-connection temporary staging table, then moved with
# one INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING: COPY has no ON CONFLICT, and
# binding the batch as parameters (a list per column, or thousands of placeholders) cost
# the server process ten times what COPY does (65-75 µs against 5 µs per row measured;
# PostgreSQL's side is the same). jsonb columns are staged as text and cast in the INSERT,
# so payloads are encoded once, by us.
STAGE_TABLE = "ingest_event_stage"
_STAGE_TYPES = {
    "event_class": "text",
    "schema_revision_id": "int8",
    "source": "text",
    "event_id": "text",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
    "request_id": "text",
    "trace_id": "text",
    "actor_hash": "text",
    "ingest_request_id": "text",
    "payload": "text",
    "redactions": "text",
    "chain_seq": "int8",
    "chain_prev": "text",
    "chain_link": "text",
}
_JSONB_COLUMNS = frozenset({"payload", "redactions"})
# Each call's rows carry the call's number: a transaction can insert several times (the
# audit path does, once per chain), and each INSERT must take only its own rows.
STAGE_COPY_TYPES = ["int8", *(_STAGE_TYPES[column] for column in INSERT_COLUMNS)]
# ON COMMIT DELETE ROWS empties it at the end of each transaction that used it. The table
# lives as long as the connection (created at most once per connection, see _stage_ready).
STAGE_CREATE_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} (stage_call int8, "
    + ", ".join(f"{column} {_STAGE_TYPES[column]}" for column in INSERT_COLUMNS)
    + ") ON COMMIT DELETE ROWS"
)
STAGE_COPY_SQL = (
    f"COPY {STAGE_TABLE} (stage_call, {', '.join(INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)
INSERT_SQL = (
    f"INSERT INTO ingest_event ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 (constants)
    "SELECT "
    + ", ".join(
        f"{column}::jsonb" if column in _JSONB_COLUMNS else column for column in INSERT_COLUMNS
    )
    + f" FROM {STAGE_TABLE} WHERE stage_call = %s ON CONFLICT DO NOTHING "
    "RETURNING event_class, source, event_id, occurred_at"
)
_stage_calls = itertools.count(1)
# Up to this many rows an INSERT ... VALUES carries them (one round trip); beyond it, the
# staging table (client-side binding of many values costs more than COPY's round trips).
VALUES_MAX_ROWS = 8
STATEMENT_TIMEOUT_SQL = "SELECT set_config('statement_timeout', %s, true)"
# psycopg connections known to hold a committed staging table.
_staged_connections: weakref.WeakSet = weakref.WeakSet()
AUDIT_EVENT_CLASS = "audit_event"
ChainPosition = tuple[int, str, str]  # (sequence number, previous link, link)


def _stage_ready(cursor: Any) -> None:
    """Create the staging table on this connection unless it is known to exist.

    Known means created in a transaction that committed: a table created in one that
    rolled back is gone, so the mark is only set on commit.
    """
    raw = connection.connection
    if raw in _staged_connections:
        return
    cursor.execute(STAGE_CREATE_SQL)
    transaction.on_commit(lambda: _staged_connections.add(raw))


def insert_events(
    events: Sequence[PreparedEvent],
    context: IngestContext,
    chain: dict[tuple, ChainPosition] | None = None,
    *,
    statement_timeout_ms: int | None = None,
) -> set[tuple]:
    """Insert ``events``; return the keys that were new (the rest were duplicates).

    The unique constraint decides what is a duplicate, so concurrent batches carrying
    the same event cannot both store it. Runs inside the caller's transaction; with
    ``statement_timeout_ms`` the transaction's statement timeout is set in the same
    round trip as the INSERT.
    """
    if not events:
        return set()
    chain = chain or {}
    no_link = (None, None, None)
    dumps = _json_dumps
    received_at = context.received_at
    request_id = context.request_id
    rows = (
        (
            event.event_class,
            event.schema_revision_id,
            event.source,
            event.event_id,
            event.occurred_at,
            received_at,
            event.request_id,
            event.trace_id,
            event.actor_hash,
            request_id,
            event.payload_json or dumps(event.payload),
            dumps(event.redactions),
            *(chain.get(event.key, no_link) if chain else no_link),
        )
        for event in events
    )
    prefix, prefix_params = "", []
    if statement_timeout_ms is not None:
        prefix, prefix_params = STATEMENT_TIMEOUT_SQL + "; ", [f"{statement_timeout_ms}ms"]
    with connection.cursor() as cursor:
        adapters = getattr(cursor.cursor, "adapters", None)
        if adapters is not None:
            # psycopg's compiled loader: Django's own timestamptz loader (pure Python) cost
            # more per returned row than the rest of the fetch.
            adapters.register_loader("timestamptz", TimestamptzLoader)
        if len(events) <= VALUES_MAX_ROWS:
            # A few rows: one INSERT with their values, one round trip (the staging table
            # would take three: COPY start, COPY data, INSERT).
            params = [value for row in rows for value in row]
            cursor.execute(prefix + _values_insert_sql(len(events)), [*prefix_params, *params])
        else:
            # Only the staging steps run before the statement timeout is set: they touch
            # this session's temporary table alone, so they cannot wait on anyone's lock.
            call = next(_stage_calls)
            _stage_ready(cursor)
            # COPY goes past Django's cursor wrapper: map its errors to Django's too.
            with connection.wrap_database_errors, cursor.copy(STAGE_COPY_SQL) as copy:
                copy.set_types(STAGE_COPY_TYPES)
                write_row = copy.write_row
                for row in rows:
                    write_row((call, *row))
            cursor.execute(prefix + INSERT_SQL, [*prefix_params, call])
        if prefix:
            cursor.nextset()  # past set_config's result, to the INSERT's
        return {tuple(row) for row in cursor.fetchall()}


@functools.lru_cache(maxsize=VALUES_MAX_ROWS)
def _values_insert_sql(count: int) -> str:
    row = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO ingest_event ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 (constants)
        f"VALUES {', '.join([row] * count)} ON CONFLICT DO NOTHING "
        "RETURNING event_class, source, event_id, occurred_at"
    )


def persist_events(
    events: Sequence[PreparedEvent],
    context: IngestContext,
    *,
    statement_timeout_ms: int | None = None,
) -> set[tuple]:
    """Store a batch: audit events through the audit chain, the rest in one insert.

    ``statement_timeout_ms`` bounds every statement of the caller's transaction from here on.
    """
    from audit.services import audit_events_append

    audit = [event for event in events if event.event_class == AUDIT_EVENT_CLASS]
    others = [event for event in events if event.event_class != AUDIT_EVENT_CLASS]
    if audit or not others:
        if statement_timeout_ms is not None and events:
            _statement_timeout(statement_timeout_ms)
        statement_timeout_ms = None
    inserted = insert_events(others, context, statement_timeout_ms=statement_timeout_ms)
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
    limits = BatchLimits(context)
    results: list[EventResult] = []
    labels: list[tuple[str, str]] = []
    labels_of: dict[Any, tuple[str, str]] = {}  # schema name -> labels, within this batch
    to_store: dict[tuple, tuple[PreparedEvent, EventResult]] = {}
    for index, item in enumerate(items):
        schema = item.schema
        label = labels_of.get(schema) if isinstance(schema, str) else None
        if label is None:
            label = _metric_labels(item)
            if isinstance(schema, str):
                labels_of[schema] = label
        labels.append(label)
        prepared = prepare_event(item, context, limits)
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
            inserted = persist_events(
                [event for event, _ in to_store.values()],
                context,
                statement_timeout_ms=telemetry_settings.DB_STATEMENT_TIMEOUT_MS,
            )
    except (OperationalError, InterfaceError) as exc:
        raise RetryableError("the event store is unavailable") from exc
    except DatabaseError as exc:
        raise RetryableError("the event store refused the batch") from exc
    # Tallied per batch, then one increment per label set: a labelled increment costs
    # microseconds (label lookup, multiprocess value file), too much to pay per event.
    deprecated: Counter = Counter()
    redactions: Counter = Counter()
    accepted: list[PreparedEvent] = []
    for key, (prepared, result) in to_store.items():
        if key in inserted:
            result.status = "accepted"
            accepted.append(prepared)
            if prepared.warnings:
                deprecated[(prepared.schema_name, str(prepared.schema_version))] += 1
            if prepared.redactions:
                schema_name = prepared.schema_name
                for path, rule in prepared.redactions:
                    redactions[(schema_name, path, rule)] += 1
    for labelset, count in deprecated.items():
        metrics.DEPRECATED_SCHEMA_EVENTS.labels(*labelset).inc(count)
    for labelset, count in redactions.items():
        metrics.REDACTIONS.labels(*labelset).inc(count)
    _count(results, labels)
    metrics_record(
        (metric, *observation)
        for prepared in accepted
        for metric in prepared.metrics
        if (observation := metric.observe(prepared.payload)) is not None
    )
    # Service counters (telemetry.service_metric.v1) on /metrics: accepted events only, so
    # a retransmitted increment is not counted twice.
    service_metrics_record(accepted)
    return BatchResult(results)


def _statement_timeout(milliseconds: int) -> None:
    # A slow or locked store must answer 503 quickly rather than hold the client.
    with connection.cursor() as cursor:
        cursor.execute(STATEMENT_TIMEOUT_SQL, [f"{milliseconds}ms"])


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
