"""The fast JSON parser returns exactly ParseDict's message, or None when it cannot prove that."""

from __future__ import annotations

import base64
import copy
import datetime
import functools

import pytest
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.fastjson import compile_json_parser
from governance.protoc import compile_protos
from governance.schemas import CompiledSchema, load_schema
from tests.protos import CLIENT_TELEMETRY_PROTO

# Every scalar type, enums, nesting and recursion, repeated, maps with each key kind,
# a oneof, proto3 optional, Timestamp and Struct (which the fast path leaves to ParseDict).
EVERYTHING_PROTO = """
syntax = "proto3";
package fastjson.v1;
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";

enum Color { COLOR_UNSPECIFIED = 0; COLOR_RED = 1; COLOR_GREEN = 2; }

message Inner {
  int32 num = 1;
  string label_text = 2;
  Inner child = 3;
  repeated Color colors = 4;
}

message Everything {
  double f_double = 1;
  float f_float = 2;
  int32 f_int32 = 3;
  int64 f_int64 = 4;
  uint32 f_uint32 = 5;
  uint64 f_uint64 = 6;
  sint32 f_sint32 = 7;
  sint64 f_sint64 = 8;
  fixed32 f_fixed32 = 9;
  fixed64 f_fixed64 = 10;
  sfixed32 f_sfixed32 = 11;
  sfixed64 f_sfixed64 = 12;
  bool f_bool = 13;
  string f_string = 14;
  bytes f_bytes = 15;
  Color color = 16;
  Inner inner = 17;
  repeated int64 r_int64 = 18;
  repeated string r_string = 19;
  repeated Inner r_inner = 20;
  repeated float r_float = 21;
  repeated bytes r_bytes = 22;
  repeated google.protobuf.Timestamp r_stamps = 23;
  map<string, int32> m_int32 = 24;
  map<string, Inner> m_inner = 25;
  map<int64, string> m_by_int64 = 26;
  map<uint32, Inner> m_by_uint32 = 27;
  map<bool, Color> m_by_bool = 28;
  map<sint32, google.protobuf.Timestamp> m_stamps = 29;
  oneof choice {
    Inner choice_inner = 30;
    string choice_text = 31;
    uint64 choice_count = 32;
    Color choice_color = 33;
  }
  optional int32 budget = 34;
  optional string maybe_name = 35;
  optional Inner maybe_inner = 36;
  optional Color maybe_color = 37;
  optional double maybe_ratio = 38;
  google.protobuf.Timestamp occurred_at = 39;
  google.protobuf.Struct attrs = 40;
}
"""

RECONNECT_EVENT = {
    "schema_version": "openagents.sync.client_telemetry.v1",
    "event_id": "evt_reconnect_001",
    "occurred_at_unix_ms": 1771700400000,
    "surface": "CLIENT_SURFACE_IOS",
    "client_build_id": "ios-2026.02.21.1",
    "app_version": "1.0.0",
    "protocol_version": "openagents.sync.v1",
    "topic": "run:019c7f31:events",
    "topic_class": "run_events",
    "actor_scope_hash": "sha256:7d8b8f5b9a8d9ff2b2730f517fef2a9bbd2d0c2c8f5ddf2c2f57d01f70b8f4b3",
    "session_id": "sess_abc123",
    "reconnect": {
        "attempt": 2,
        "backoff_ms": 950,
        "resumed": True,
        "last_applied_seq": 307,
        "reason_code": "network_path_changed",
    },
}
EVENT_PAYLOADS = {
    "reconnect": RECONNECT_EVENT["reconnect"],
    "auth_failure": {"http_status": 401, "reason_code": "token_too_old", "refresh_attempted": True},
    "replay": {
        "status": "stale_cursor",
        "requested_after_seq": 0,
        "oldest_available_seq": 940,
        "head_seq": 1320,
        "catchup_duration_ms": 0,
    },
    "delivery_error": {
        "channel": "ws",
        "reason_code": "slow_consumer",
        "rolling_error_count_5m": 3,
    },
}


@functools.cache
def _schema(source: str, message: str) -> CompiledSchema:
    file_set = compile_protos({"fastjson_test.proto": source}, include_platform_protos=False)
    return load_schema(file_set.SerializeToString(), message)


@functools.cache
def _parser(source: str, message: str):
    schema = _schema(source, message)
    return compile_json_parser(schema.descriptor, schema.message_class)


def _telemetry():
    return (
        _schema(CLIENT_TELEMETRY_PROTO, "openagents.sync.v1.ClientTelemetryEvent"),
        _parser(CLIENT_TELEMETRY_PROTO, "openagents.sync.v1.ClientTelemetryEvent"),
    )


def _everything():
    return (
        _schema(EVERYTHING_PROTO, "fastjson.v1.Everything"),
        _parser(EVERYTHING_PROTO, "fastjson.v1.Everything"),
    )


def _event(kind: str, **overrides) -> dict:
    event = {k: v for k, v in RECONNECT_EVENT.items() if k != "reconnect"}
    event[kind] = copy.deepcopy(EVENT_PAYLOADS[kind])
    event.update(overrides)
    return event


def _reference(schema: CompiledSchema, data):
    """ParseDict's message, or None if it raises (any exception counts as a rejection)."""
    try:
        return json_format.ParseDict(
            copy.deepcopy(data), schema.message_class(), ignore_unknown_fields=False
        )
    except Exception:
        return None


def _serialize(message) -> bytes:
    return message.SerializeToString(deterministic=True)


def _assert_agrees(schema: CompiledSchema, parse, data) -> bool:
    """Check the fast path against ParseDict; return whether the fast path answered."""
    original = copy.deepcopy(data)
    fast = parse(data)
    assert data == original  # the input is never mutated
    reference = _reference(schema, data)
    if reference is None:
        assert fast is None, f"fast path accepted what ParseDict rejects: {data!r}"
        return False
    if fast is not None:
        assert _serialize(fast) == _serialize(reference), f"messages differ for {data!r}"
    return fast is not None


# ---------------------------------------------------------------------------------------
# Hypothesis strategies, derived from the descriptor so every field is exercised.

_INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_64_BIT = {t for t, (lo, hi) in _INT_BOUNDS.items() if hi > 2**32}
_MAX_NESTING = 3

_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_AWKWARD_INTS = [True, False, 1.0, 1.5, -0.0, 1e3, "1", "-1", " 1", "+1", "1_0", "1e3", "1.0"]
_AWKWARD_INTS += ["0x10", "01", "-0", "\t7", "١٢", "", "-", "18446744073709551616", 10**400]
_AWKWARD_FLOATS = [float("nan"), float("inf"), float("-inf"), 1e39, -1e39, 10**39, 10**400]
_AWKWARD_FLOATS += [3.4028235e38, 3.4028236e38, -3.4028236e38, 1e-50, -0.0, 5e-324, True]
_AWKWARD_FLOATS += ["NaN", "Infinity", "-Infinity", "nan", "1.5", "1e3", ""]
_AWKWARD_STRINGS = st.sampled_from(
    ["\ud800", "a\udc00", "\ud83d\ude00", "é", "😀", "", "true", "COLOR_RED", "color_red"]
)
_TIMESTAMPS = st.datetimes(
    min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31)
)


def _rfc3339(moment: datetime.datetime, fraction: str, offset: str) -> str:
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}{fraction}{offset}"
    )


_VALID_TIMESTAMPS = st.builds(
    _rfc3339,
    _TIMESTAMPS,
    st.sampled_from(["", ".5", ".123", ".000001", ".123456789"]),
    st.just("Z"),
) | st.builds(
    _rfc3339,
    st.datetimes(datetime.datetime(1900, 1, 1), datetime.datetime(2100, 1, 1)),
    st.sampled_from(["", ".25"]),
    st.sampled_from(["+05:30", "-08:00", "+00:00"]),
)
_ANY_TIMESTAMPS = _VALID_TIMESTAMPS | st.sampled_from(
    [
        "1970-01-01T00:00:00",
        "1970-01-01 00:00:00Z",
        "1970-01-01t00:00:00Z",
        "2020-13-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2020-01-01T00:00:00.1234567891Z",
        "2020-01-01T00:00:00ZZ",
        "2020-01-01T00:00:00+2500",
        "",
    ]
)
_VALID_BYTES = st.binary(max_size=12).flatmap(
    lambda raw: st.sampled_from(
        [
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
        ]
    )
)
_ANY_BYTES = _VALID_BYTES | st.text(alphabet="ABCQab01+/-_=!é ", max_size=9)


def _valid_scalar(field: FieldDescriptor):
    """Values the fast path is expected to accept for a non-message field."""
    kind = field.type
    if kind in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[kind]
        ints = st.integers(lo, hi) | st.sampled_from([lo, hi, 0])
        return ints | ints.map(str) if kind in _64_BIT else ints
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**60), 2**60)
    if kind == FieldDescriptor.TYPE_FLOAT:
        finite32 = st.floats(allow_nan=False, allow_infinity=False, width=32)
        # Doubles and big ints round to float32 in the setter, identically on both paths.
        return finite32 | st.floats(-1e6, 1e6) | st.integers(-(2**40), 2**40)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_STRING:
        return st.text(max_size=10)
    if kind == FieldDescriptor.TYPE_BYTES:
        return _VALID_BYTES
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([value.name for value in field.enum_type.values])
    raise AssertionError(f"unexpected field type {kind}")


def _mostly(valid, junk, one_in: int = 5):
    """Junk once in ``one_in`` draws, so whole payloads still pass often enough to compare."""
    return st.integers(1, one_in).flatmap(lambda n: junk if n == one_in else valid)


def _junk_scalar(field: FieldDescriptor):
    """Type confusion and boundary cases for a non-message field."""
    kind = field.type
    if kind in _INT_BOUNDS:
        lo, hi = _INT_BOUNDS[kind]
        edges = [lo - 1, hi + 1, str(lo - 1), str(hi + 1), float(hi), float(lo)]
        return st.sampled_from(_AWKWARD_INTS + edges)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.sampled_from(_AWKWARD_FLOATS)
    if kind == FieldDescriptor.TYPE_BYTES:
        return _ANY_BYTES | _AWKWARD_STRINGS
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.integers(-1, 5) | st.sampled_from(["COLOR_BLUE", "color_red", "1", True])
    return _AWKWARD_STRINGS | st.sampled_from([0, 1, "1", "true"])


def _any_scalar(field: FieldDescriptor):
    """Mostly valid values, otherwise type-specific junk or arbitrary JSON."""
    return _mostly(_valid_scalar(field), _junk_scalar(field) | _ANY_JSON)


def _map_keys(key_field: FieldDescriptor, valid: bool):
    kind = key_field.type
    if kind == FieldDescriptor.TYPE_STRING:
        keys = st.text(max_size=6)
        return keys if valid else keys | _AWKWARD_STRINGS
    if kind == FieldDescriptor.TYPE_BOOL:
        keys = st.sampled_from(["true", "false"])
        return keys if valid else keys | st.sampled_from(["True", "1", "", "yes"])
    lo, hi = _INT_BOUNDS[kind]
    keys = st.integers(lo, hi).map(str)
    if valid:
        return keys
    return keys | st.sampled_from(["01", "1", " 1", "+1", "-0", "0", "x", "1.0", str(hi + 1)])


def _value(field: FieldDescriptor, valid: bool, depth: int):
    """A strategy for one field's JSON value (repeated and map fields included)."""
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        key = _map_keys(message_type.fields_by_name["key"], valid)
        element = _single(message_type.fields_by_name["value"], valid, depth)
        maps = st.dictionaries(key, element, max_size=3)
        return maps if valid else _mostly(maps, _ANY_JSON)
    if field.is_repeated:
        element = _single(field, valid, depth)
        lists = st.lists(element, max_size=3)
        return lists if valid else _mostly(lists, _ANY_JSON | st.lists(element | st.none()))
    return _single(field, valid, depth)


def _single(field: FieldDescriptor, valid: bool, depth: int):
    message_type = field.message_type
    if message_type is None:
        return _valid_scalar(field) if valid else _any_scalar(field)
    if message_type.full_name == "google.protobuf.Timestamp":
        return (
            _VALID_TIMESTAMPS if valid else _mostly(_VALID_TIMESTAMPS, _ANY_TIMESTAMPS | _ANY_JSON)
        )
    if message_type.full_name == "google.protobuf.Struct":
        return st.dictionaries(st.text(max_size=4), _ANY_JSON, max_size=3) | _ANY_JSON
    nested = _message(message_type, valid, depth + 1)
    return nested if valid else _mostly(nested, _ANY_JSON)


def _message(descriptor: Descriptor, valid: bool, depth: int = 0):
    """Dicts of field entries; in valid mode one spelling per field and one oneof member."""
    if depth > _MAX_NESTING:
        return st.just({})
    entries = []
    for field in descriptor.fields:
        if valid and field.message_type and field.message_type.full_name.endswith("Struct"):
            continue
        spellings = st.sampled_from(sorted({field.name, field.json_name}))
        # Deferred so a recursive message type only expands as deep as examples need.
        value = st.deferred(lambda field=field: _value(field, valid, depth))
        entries.append(st.tuples(spellings, value, st.just(field)))
    entry = st.one_of(entries)
    if not valid:
        junk = st.sampled_from(["unknown_key", "[fastjson.v1.ext]", "choice", "_budget", ""])
        entry = _mostly(entry, st.tuples(junk, _ANY_JSON, st.none()), one_in=12)
    return st.lists(entry, max_size=6).map(functools.partial(_assemble, valid=valid))


def _assemble(entries, valid: bool) -> dict:
    data: dict = {}
    fields_seen: set[str] = set()
    oneofs_seen: set[str] = set()
    for key, value, field in entries:
        if valid:
            oneof = field.containing_oneof
            if field.name in fields_seen or (oneof is not None and oneof.name in oneofs_seen):
                continue
            fields_seen.add(field.name)
            if oneof is not None:
                oneofs_seen.add(oneof.name)
        data[key] = value
    return data


# ---------------------------------------------------------------------------------------
# Properties


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.deferred(lambda: _message(_everything()[0].descriptor, valid=False)))
def test_fast_path_never_disagrees_with_parsedict(data):
    """On arbitrary JSON-ish input the fast path returns ParseDict's exact message or None.

    Wrong types, camelCase and snake_case keys (both at once too), unknown keys, oneof
    conflicts, out-of-range and quoted integers, NaN and infinities, bad base64 and bad
    timestamps are all generated; whenever ParseDict raises, the fast path must say None.
    """
    schema, parse = _everything()
    _assert_agrees(schema, parse, data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.deferred(lambda: _message(_everything()[0].descriptor, valid=True)))
def test_well_typed_payloads_take_the_fast_path(data):
    """Well-typed payloads (one spelling per field, one oneof member) never need ParseDict."""
    schema, parse = _everything()
    assert _assert_agrees(schema, parse, data), f"fast path declined {data!r}"


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(sorted(EVENT_PAYLOADS)),
    event_id=st.text(max_size=20),
    occurred=st.integers(0, 2**63 - 1) | st.integers(0, 2**63 - 1).map(str),
    surface=st.sampled_from(["CLIENT_SURFACE_WEB", "CLIENT_SURFACE_ONYX", 3, "WEB"]),
)
def test_telemetry_variations_agree(kind, event_id, occurred, surface):
    """Client telemetry events with varied ids, times and surfaces agree with ParseDict."""
    schema, parse = _telemetry()
    data = _event(kind, event_id=event_id, occurred_at_unix_ms=occurred, surface=surface)
    _assert_agrees(schema, parse, data)


# ---------------------------------------------------------------------------------------
# Targeted behaviour


@pytest.mark.parametrize("kind", sorted(EVENT_PAYLOADS))
def test_client_telemetry_fixtures_take_the_fast_path(kind):
    """Each client telemetry fixture event parses via the fast path into ParseDict's message."""
    schema, parse = _telemetry()
    data = _event(kind)
    fast = parse(data)
    assert fast is not None
    assert _serialize(fast) == _serialize(_reference(schema, data))
    assert fast.WhichOneof("event") == kind


def test_oneof_conflict_falls_back():
    """Two members of one oneof make ParseDict raise, so the fast path returns None."""
    schema, parse = _telemetry()
    data = _event("reconnect", replay=EVENT_PAYLOADS["replay"])
    assert parse(data) is None
    assert _reference(schema, data) is None


def test_unknown_field_falls_back():
    """A key naming no field makes ParseDict raise, so the fast path returns None."""
    schema, parse = _telemetry()
    data = _event("replay", not_a_field="x")
    assert parse(data) is None
    assert _reference(schema, data) is None


def test_camel_case_keys_are_accepted():
    """json_name keys (lowerCamelCase) parse like the field names, nested ones included."""
    schema, parse = _telemetry()
    snake = _event("delivery_error")
    camel = {
        "schemaVersion": snake["schema_version"],
        "eventId": snake["event_id"],
        "occurredAtUnixMs": snake["occurred_at_unix_ms"],
        "surface": snake["surface"],
        "clientBuildId": snake["client_build_id"],
        "deliveryError": {"channel": "ws", "reasonCode": "slow_consumer", "rollingErrorCount5m": 3},
    }
    fast = parse(camel)
    assert fast is not None
    assert _serialize(fast) == _serialize(_reference(schema, camel))
    assert fast.delivery_error.rolling_error_count_5m == 3
    assert fast.event_id == snake["event_id"]


def test_both_spellings_of_one_field_fall_back():
    """A field given under both its name and its json_name is left to ParseDict."""
    _, parse = _telemetry()
    assert parse(_event("replay", eventId="other")) is None


def test_optional_presence_is_kept_for_default_values():
    """proto3 optional fields set to their default still report presence, as with ParseDict."""
    schema, parse = _everything()
    data = {"budget": 0, "maybeName": "", "maybe_color": "COLOR_UNSPECIFIED", "maybe_inner": {}}
    fast = parse(data)
    assert fast is not None
    for name in ("budget", "maybe_name", "maybe_color", "maybe_inner"):
        assert fast.HasField(name)
    assert _serialize(fast) == _serialize(_reference(schema, data))
    assert not parse({}).HasField("budget")


def test_empty_oneof_member_and_nested_message_are_present():
    """An empty object or default scalar still selects the oneof member / sets the message."""
    schema, parse = _everything()
    for data in ({"choice_inner": {}}, {"choiceText": ""}, {"choice_count": "0"}, {"inner": {}}):
        fast = parse(data)
        assert fast is not None
        assert _serialize(fast) == _serialize(_reference(schema, data))
    assert parse({"choice_text": ""}).WhichOneof("choice") == "choice_text"


def test_timestamps_match_parsedict():
    """RFC 3339 timestamps (fractions, offsets) become ParseDict's seconds and nanos."""
    schema, parse = _everything()
    data = {
        "occurred_at": "2026-02-21T19:00:00.123456789Z",
        "r_stamps": ["1970-01-01T00:00:00Z", "2026-02-21T19:00:00+05:30"],
        "m_stamps": {"-3": "2000-01-01T00:00:00.5Z"},
    }
    fast = parse(data)
    assert fast is not None
    assert fast.occurred_at.seconds == 1771700400
    assert fast.occurred_at.nanos == 123456789
    assert _serialize(fast) == _serialize(_reference(schema, data))
    assert parse({"occurred_at": "2026-02-21 19:00:00Z"}) is None
    assert parse({"occurred_at": 1771700400}) is None


def test_int64_accepts_decimal_strings_only():
    """64-bit ints may be quoted decimal strings; other spellings go to ParseDict."""
    _, parse = _everything()
    fast = parse({"f_int64": "-9223372036854775808", "f_uint64": "18446744073709551615"})
    assert fast is not None
    assert fast.f_int64 == -(2**63)
    assert fast.f_uint64 == 2**64 - 1
    for spelling in (" 1", "+1", "1_0", "1.0", "18446744073709551616"):
        assert parse({"f_uint64": spelling}) is None


def test_out_of_range_and_wrong_types_fall_back():
    """Out-of-range ints, bools for ints, floats for ints and strings for floats are declined."""
    _, parse = _everything()
    for data in (
        {"f_int32": 2**31},
        {"f_uint32": -1},
        {"f_int32": True},
        {"f_int32": 1.0},
        {"f_double": "NaN"},
        {"f_float": 1e39},
        {"f_bool": 1},
        {"f_string": 5},
        {"color": 1},
        {"color": "COLOR_BLUE"},
        {"inner": []},
        {"r_int64": [1, None]},
    ):
        assert parse(data) is None, data


def test_well_known_json_types_and_nulls_fall_back():
    """Struct values and nulls are ParseDict's business; the fast path declines them."""
    schema, parse = _everything()
    for data in ({"attrs": {"a": 1}}, {"f_string": None}, {"inner": None}):
        assert parse(data) is None
        assert _reference(schema, data) is not None


def test_deep_nesting_falls_back():
    """Nesting beyond ParseDict's recursion limit is declined rather than attempted."""
    schema, parse = _everything()
    data: dict = {}
    for _ in range(120):
        data = {"child": data}
    assert parse({"inner": data}) is None
    assert _reference(schema, {"inner": data}) is None


def test_map_keys_naming_one_entry_fall_back():
    """Keys "1" and "01" name one entry; ParseDict merges message values, so defer to it."""
    schema, parse = _everything()
    data = {"m_by_uint32": {"1": {"num": 5}, "01": {"label_text": "x"}}}
    assert parse(data) is None
    merged = _reference(schema, data).m_by_uint32[1]
    assert (merged.num, merged.label_text) == (5, "x")
    fast = parse({"m_by_uint32": {"1": {"num": 5}, "2": {}}, "m_by_bool": {"true": "COLOR_RED"}})
    assert fast is not None
    assert fast.m_by_bool[True] == 1


def test_non_finite_floats_fall_back():
    """Bare NaN and infinities, and float32 overflow, are rejected by ParseDict and declined."""
    schema, parse = _everything()
    for data in (
        {"f_double": float("nan")},
        {"f_double": float("inf")},
        {"r_float": [1.0, float("-inf")]},
        {"f_float": 3.4028236e38},
        {"f_double": 10**400},
    ):
        assert parse(data) is None
        assert _reference(schema, data) is None
