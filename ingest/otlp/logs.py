"""OTLP log records as raw items of registered schemas, by the log routes. Pure.

A record's route (by event name, instrumentation scope and ``service.name``) names its
schema. Its body (when a key-value list) and attributes fill the message's top-level
fields by name, dots and dashes read as underscores (``user.id`` -> ``user_id``); an
attribute whose name starts with a string map's name fills that map
(``http.request.header.cookie`` -> ``http_request_header["cookie"]``); the rest go to the
message's ``attributes`` map, or, when it has none, are unclassified: dropped or the record
rejected, per TELEMETRY_UNCLASSIFIED_FIELDS. ``url.full`` / ``url.query`` keep parameter
names but not values (nor a URL's user:password@), wherever they land. The
record's time (else its observed time) fills the occurred-at field, trace and span ids a
traceparent, ``service.name`` the source.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from governance.choices import FieldRole
from governance.otlp import LogRoute, route_for
from governance.plans import SchemaPlan
from governance.schemas import TIMESTAMP_TYPE

from ..codes import RejectCode
from ..pipeline import BatchError, KeyScope, RawItem, Rejection
from .codes import OtlpCode
from .values import NANOS, any_value_plain, plain_text, url_parameters_redacted

# OpenTelemetry's default attribute count limit is 128; twice that is refused outright.
MAX_ATTRIBUTES = 256
MAX_NAME_IN_MESSAGE = 100
MAX_PLACEMENTS = 4096  # attribute names remembered per target (beyond: worked out each time)
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the Timestamp's upper bound
DECIMAL = re.compile(r"-?[0-9]{1,20}")
# Semantic-convention URL attributes: their parameter values never reach the pipeline
# (url.full with user:password@ too), whichever field or map they land in; the field's own
# policy (a scan) applies after.
URL_FIELDS = {"url_full": False, "url_query": True}  # name -> is a bare query string
INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
    }
)


@dataclass(frozen=True)
class LogTarget:
    """What of a schema's message a log record can fill, read once per plan."""

    schema_name: str
    strings: frozenset[str]
    integers: frozenset[str]
    maps: tuple[str, ...]  # string maps other than ``attributes``, longest name first
    has_attributes: bool
    occurred_at: str
    traceparent: str
    source: str
    taken: frozenset[str]  # fields the record's own facts fill; attributes never override
    message_class: type[Message]
    # attribute name -> where it goes (see _placement), filled as records arrive
    placements: dict[str, tuple[str, str, str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_plan(cls, plan: SchemaPlan) -> LogTarget:
        """The target of ``plan``'s message."""
        descriptor: Descriptor = plan.compiled.descriptor
        strings, integers, maps = set(), set(), []
        has_attributes = False
        for fd in descriptor.fields:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                value = fd.message_type.fields_by_name["value"]
                if value.type == FieldDescriptor.TYPE_STRING:
                    if fd.name == "attributes":
                        has_attributes = True
                    else:
                        maps.append(fd.name)
                continue
            if fd.is_repeated:
                continue
            if fd.type == FieldDescriptor.TYPE_STRING:
                strings.add(fd.name)
            elif fd.type in INTEGER_TYPES:
                integers.add(fd.name)
        roles = plan.roles
        occurred_at = roles.get(FieldRole.OCCURRED_AT, "")
        traceparent = roles.get(FieldRole.TRACEPARENT, "")
        source = roles.get(FieldRole.SOURCE, "")
        taken = {path for path in (occurred_at, traceparent, source) if path}
        if occurred_at and not _is_timestamp(descriptor, occurred_at):
            occurred_at = ""
        return cls(
            schema_name=plan.schema_name,
            strings=frozenset(strings),
            integers=frozenset(integers),
            maps=tuple(sorted(maps, key=len, reverse=True)),
            has_attributes=has_attributes,
            occurred_at=occurred_at,
            traceparent=traceparent,
            source=source,
            taken=frozenset(taken | {"event_name"}),
            message_class=plan.compiled.message_class,
        )


def _is_timestamp(descriptor: Descriptor, path: str) -> bool:
    for part in path.split("."):
        fd = descriptor.fields_by_name.get(part)
        if fd is None:
            return False
        descriptor = fd.message_type
    return descriptor is not None and descriptor.full_name == TIMESTAMP_TYPE


TargetLookup = Callable[[str], "LogTarget | Rejection"]


def log_items(
    request: ExportLogsServiceRequest,
    *,
    routes: tuple[LogRoute, ...],
    target_of: TargetLookup,
    scope: KeyScope,
    unclassified: str,
    max_records: int,
) -> list[tuple[str, RawItem | Rejection]]:
    """Each log record's path in the request and its raw item (or why it has none), in order."""
    count = sum(
        len(scope_logs.log_records)
        for resource_logs in request.resource_logs
        for scope_logs in resource_logs.scope_logs
    )
    if count > max_records:
        raise BatchError(
            "too_many_events",
            f"request has {count} log records; at most {max_records} are accepted per request",
        )
    items: list[tuple[str, RawItem | Rejection]] = []
    for r, resource_logs in enumerate(request.resource_logs):
        resource = {kv.key: any_value_plain(kv.value) for kv in resource_logs.resource.attributes}
        service = plain_text(resource.pop("service.name", ""))
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            scope_name = scope_logs.scope.name
            for k, record in enumerate(scope_logs.log_records):
                path = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{k}]"
                item = _record_item(
                    record,
                    service=service,
                    resource=resource,
                    scope_name=scope_name,
                    routes=routes,
                    target_of=target_of,
                    scope=scope,
                    unclassified=unclassified,
                )
                items.append((path, item))
    return items


def _record_item(
    record: LogRecord,
    *,
    service: str,
    resource: dict[str, Any],
    scope_name: str,
    routes: tuple[LogRoute, ...],
    target_of: TargetLookup,
    scope: KeyScope,
    unclassified: str,
) -> RawItem | Rejection:
    if len(record.attributes) > MAX_ATTRIBUTES:
        return Rejection(
            OtlpCode.TOO_MANY_ATTRIBUTES,
            f"log record has {len(record.attributes)} attributes; at most {MAX_ATTRIBUTES}",
            "attributes",
        )
    attributes = [(kv.key, any_value_plain(kv.value)) for kv in record.attributes]
    event_name = record.event_name or next(
        (plain_text(value) for key, value in attributes if key == "event.name"), ""
    )
    route = _route_cached(routes, event_name, scope_name, service)
    if route is None or not route.schema_name:
        return Rejection(
            OtlpCode.UNMAPPED_LOG_RECORD,
            "no OTLP log route maps this record to a schema",
            "event_name",
        )
    target = target_of(route.schema_name)
    if isinstance(target, Rejection):
        return target
    if service and not target.source and scope.sources and service not in scope.sources:
        return Rejection(
            RejectCode.FORBIDDEN_SOURCE,
            "this API key may not send events for this service.name",
            "resource.service.name",
        )
    message = target.message_class()
    extra: dict[str, str] = {}
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    if nanos and target.occurred_at:
        if nanos // NANOS > MAX_TIMESTAMP_SECONDS:
            return Rejection(
                RejectCode.OUT_OF_RANGE,
                "time_unix_nano is not a representable time",
                "timeUnixNano",
            )
        _field(message, target.occurred_at).FromNanoseconds(nanos)
    if record.trace_id:
        if len(record.trace_id) != 16 or (record.span_id and len(record.span_id) != 8):
            return Rejection(
                OtlpCode.INVALID_TRACE_ID, "trace id must be 16 bytes, span id 8", "traceId"
            )
        if target.traceparent:
            span = record.span_id.hex() if record.span_id else "0" * 16
            flags = record.flags & 0xFF
            _set(message, target.traceparent, f"00-{record.trace_id.hex()}-{span}-{flags:02x}")
    if service and target.source:
        _set(message, target.source, service)
    for name, value in (
        ("event_name", event_name),
        ("severity_text", record.severity_text),
        ("scope_name", scope_name),
    ):
        if not value:
            continue
        if name in target.strings:
            setattr(message, name, value)
        elif name != "scope_name":
            extra[name] = value
    if record.severity_number:
        if "severity_number" in target.integers:
            message.severity_number = int(record.severity_number)
        else:
            extra["severity_number"] = str(int(record.severity_number))
    if "resource" in target.maps and resource:
        message.resource.update({key: plain_text(value) for key, value in resource.items()})
    fields: list[tuple[str, Any]] = []
    kind = record.body.WhichOneof("value")
    if kind == "kvlist_value":
        fields.extend(any_value_plain(record.body).items())
    elif kind is not None:
        text = plain_text(any_value_plain(record.body))
        if "body" in target.strings:
            message.body = text
        else:
            extra["body"] = text
    fields.extend(attributes)
    for key, value in fields:
        if key == "event.name":
            continue
        refused = _place(target, message, extra, key, value, unclassified)
        if refused is not None:
            return refused
    if extra and target.has_attributes:
        message.attributes.update(extra)
    # The pipeline's binary path (as for a native protobuf event): no JSON round trip.
    return RawItem(schema=target.schema_name, body=message.SerializeToString())


# The routes the memo answers for (held, so their identity cannot be reused) and the memo,
# one tuple replaced whole, so a thread never pairs one routes tuple with another's memo.
_route_memo: tuple[tuple[LogRoute, ...], dict] = ((), {})


def _route_cached(
    routes: tuple[LogRoute, ...], event_name: str, scope: str, service: str
) -> LogRoute | None:
    """route_for, memoised while the same routes tuple (a new one after each epoch) is in use."""
    global _route_memo
    held, memo = _route_memo
    if held is not routes or len(memo) > 4096:
        memo = {}
        _route_memo = (routes, memo)
    key = (event_name, scope, service)
    route = memo.get(key, memo)
    if route is memo:
        route = memo[key] = route_for(routes, event_name=event_name, scope=scope, service=service)
    return route


def _placement(target: LogTarget, key: str) -> tuple[str, str, str]:
    """Where an attribute named ``key`` goes in ``target``'s message: (kind, field, map
    key), kind one of string, integer, map, extra, none. Read once per key and target."""
    name = key.replace(".", "_").replace("-", "_")
    if name not in target.taken:
        if name in target.strings:
            return "string", name, ""
        if name in target.integers:
            return "integer", name, ""
        for map_name in target.maps:
            if name.startswith(f"{map_name}_") and len(name) > len(map_name) + 1:
                return "map", map_name, key[len(map_name) + 1 :]
    return ("extra" if target.has_attributes else "none"), name, ""


def _place(
    target: LogTarget,
    message: Message,
    extra: dict[str, str],
    key: str,
    value: Any,
    unclassified: str,
) -> Rejection | None:
    placement = target.placements.get(key)
    if placement is None:
        placement = _placement(target, key)
        if len(target.placements) < MAX_PLACEMENTS:
            target.placements[key] = placement
    kind, name, map_key = placement
    text = value if type(value) is str else plain_text(value)
    if name in URL_FIELDS:
        text = url_parameters_redacted(text, whole_query=URL_FIELDS[name])
    if kind == "string":
        setattr(message, name, text)
    elif kind == "map":
        getattr(message, name)[map_key] = text
    elif kind == "extra":
        extra[key] = text
    elif kind == "integer":
        return _integer_set(message, name, value)
    elif unclassified == "reject":
        return Rejection(
            OtlpCode.UNCLASSIFIED_ATTRIBUTE,
            f"attribute has no field in {target.schema_name}",
            f"attributes[{key[:MAX_NAME_IN_MESSAGE]!r}]",
        )
    return None


def _integer_set(message: Message, name: str, value: Any) -> Rejection | None:
    """An int, an integral double or a decimal string, within the field's range."""
    integral = isinstance(value, float) and value.is_integer()
    if integral or (isinstance(value, str) and DECIMAL.fullmatch(value)):
        value = int(value)
    if type(value) is not int:
        return Rejection(RejectCode.INVALID_VALUE, "expected a whole number", name)
    try:
        setattr(message, name, value)
    except ValueError:
        return Rejection(RejectCode.OUT_OF_RANGE, "number out of the field's range", name)
    return None


def _field(message: Message, path: str) -> Message:
    for part in path.split("."):
        message = getattr(message, part)
    return message


def _set(message: Message, path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, leaf, value)
