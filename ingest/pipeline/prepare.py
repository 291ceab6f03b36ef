"""Prepare one event: resolve its schema, validate, redact, read the envelope, check it.

Pure: plain data in, a new ``PreparedEvent`` or a ``Rejection`` out. No database, no
HTTP: the schema resolver is handed in by the caller (the plan cache in production, a
dictionary in tests). Redaction comes before the envelope is read, so nothing after it
(derived ids, envelope columns, the stored payload) can see a raw value.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from governance.choices import FieldRole
from governance.descriptors import locate_json_error
from governance.plans import SchemaPlan, SchemaRefusal
from governance.redaction import PSEUDONYM_RE, redact_message
from governance.schemas import TIMESTAMP_TYPE
from telemetry_platform.conf import telemetry_settings

from ..codes import RejectCode
from .types import IngestContext, PreparedEvent, RawItem, Rejection

TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
MAX_IDENTIFIER_LENGTH = 200
DEPRECATED_WARNING = ("schema revision is deprecated",)
UNKNOWN_LABELS = ("unknown", "unknown")


class SchemaResolver(Protocol):
    """Where schema names are looked up (governance.selectors.SchemaPlanCache)."""

    def get(
        self, schema_name: str, version: int | None = None
    ) -> SchemaPlan | SchemaRefusal | None:
        """The plan of ``schema_name`` (at ``version``), why it is refused, or None."""

    def event_class_of(self, schema_name: str) -> str | None:
        """The event class of a registered ``NAME`` or ``NAME@N``, else None."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """What one schema name of a batch resolved to, and the metric labels of its events."""

    plan: SchemaPlan | Rejection
    labels: tuple[str, str]  # (event class, schema name); "unknown" for unregistered names


class BatchRules:
    """The limits one batch is checked against (settings read once per batch), and the
    batch's resolution of each schema name (plans do not change within a batch)."""

    __slots__ = (
        "context",
        "future_limit",
        "max_event_bytes",
        "oldest",
        "received_at",
        "resolved",
        "resolver",
        "skew_seconds",
        "suppressed",
    )

    def __init__(self, context: IngestContext, resolver: SchemaResolver) -> None:
        skew = timedelta(seconds=telemetry_settings.MAX_FUTURE_SKEW_SECONDS)
        self.context = context
        self.resolver = resolver
        self.max_event_bytes: int = telemetry_settings.MAX_EVENT_BYTES
        self.skew_seconds = int(skew.total_seconds())
        self.received_at = context.received_at
        self.future_limit = context.received_at + skew
        self.oldest: dict[int, datetime] = {}  # retention days -> oldest acceptable time
        self.resolved: dict[str, Resolved] = {}
        # Read once per batch from the resolver (the plan cache loads it with the plans).
        self.suppressed: frozenset[str] = getattr(resolver, "suppressed", frozenset())

    def oldest_for(self, retention_days: int) -> datetime:
        """The oldest occurred-at a retention of ``retention_days`` accepts."""
        oldest = self.oldest.get(retention_days)
        if oldest is None:
            oldest = self.oldest[retention_days] = self.received_at - timedelta(days=retention_days)
        return oldest

    def resolve(self, schema: Any) -> Resolved:
        """The plan (or why not) and metric labels of ``schema``, once per name per batch."""
        if type(schema) is not str:
            return Resolved(_resolve_schema(schema, self.context, self.resolver), UNKNOWN_LABELS)
        resolved = self.resolved.get(schema)
        if resolved is None:
            resolved = self.resolved[schema] = Resolved(
                _resolve_schema(schema, self.context, self.resolver),
                _metric_labels(schema, self.resolver),
            )
        return resolved


def prepare_event(
    item: RawItem, context: IngestContext, rules: BatchRules
) -> PreparedEvent | Rejection:
    """Resolve the schema, validate, redact, then read the envelope of one event."""
    plan = rules.resolve(item.schema).plan
    if isinstance(plan, Rejection):
        return plan
    message = validate_event(plan, item.body)
    if isinstance(message, Rejection):
        return message
    if message.ByteSize() > rules.max_event_bytes:
        return Rejection(
            RejectCode.EVENT_TOO_LARGE,
            f"event is larger than {rules.max_event_bytes} bytes",
        )
    # Redact before anything else reads the values: the envelope, the derived id and
    # the stored payload all see only the redacted message.
    outcome = redact_message(plan.redaction, message)
    if outcome.rejection is not None:
        rejection = outcome.rejection
        return Rejection(rejection.code, rejection.message, rejection.field)
    prepared = _envelope(
        plan, message, context, rules, tuple(outcome.redactions), outcome.subject_hashes
    )
    if (
        rules.suppressed
        and type(prepared) is PreparedEvent
        and not rules.suppressed.isdisjoint(prepared.subject_hashes)
    ):
        return Rejection(
            RejectCode.SUPPRESSED,
            "the event names a data subject whose events are not accepted",
            plan.roles.get(FieldRole.ACTOR, ""),
        )
    return prepared


def _metric_labels(name: str, resolver: SchemaResolver) -> tuple[str, str]:
    # Only registered names become label values: an unknown name must not mint a series.
    event_class = resolver.event_class_of(name) if name else None
    if event_class is None:
        return UNKNOWN_LABELS
    return event_class, name.partition("@")[0]


def _resolve_schema(
    schema: Any, context: IngestContext, resolver: SchemaResolver
) -> SchemaPlan | Rejection:
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
    plan = resolver.get(name, int(pinned) if pinned else None)
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
    plan: SchemaPlan, occurred_at: datetime, rules: BatchRules
) -> Rejection | None:
    if occurred_at > rules.future_limit:
        return Rejection(
            RejectCode.CLOCK_SKEW,
            f"occurred-at is more than {rules.skew_seconds}s in the future",
            plan.roles[FieldRole.OCCURRED_AT],
        )
    if occurred_at < rules.oldest_for(plan.retention_days):
        return Rejection(
            RejectCode.EXPIRED,
            f"occurred-at is older than the {plan.event_class} retention "
            f"({plan.retention_days} days)",
            plan.roles[FieldRole.OCCURRED_AT],
        )
    return None


def _envelope(
    plan: SchemaPlan,
    message: Message,
    context: IngestContext,
    rules: BatchRules,
    redactions: tuple[tuple[str, str], ...],
    subject_hashes: tuple[str, ...] = (),
) -> PreparedEvent | Rejection:
    reader = plan.envelope
    occurred_at = _occurred_at(plan, reader.occurred_at(message))
    if isinstance(occurred_at, Rejection):
        return occurred_at
    window = _time_window_check(plan, occurred_at, rules)
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
    payload_json = json_dumps(payload)
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
        warnings=DEPRECATED_WARNING if plan.deprecated else (),
        redactions=redactions,
        metrics=plan.metrics,
        subject_hashes=(
            (*subject_hashes, actor_hash)
            if actor_hash and actor_hash not in subject_hashes and PSEUDONYM_RE.match(actor_hash)
            else subject_hashes
        ),
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


_stdlib_dumps = json.JSONEncoder(separators=(",", ":")).encode


def json_dumps(value: Any) -> str:
    """Compact JSON text of a payload or redaction record, for a jsonb column.

    orjson is five times the standard encoder here; the stored jsonb is the same either
    way. Values orjson refuses (integers beyond 64 bits, say) take the standard path.
    """
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _stdlib_dumps(value)
