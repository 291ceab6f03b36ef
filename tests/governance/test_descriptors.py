"""Tests for the descriptor field catalogue and the value-free JSON rejection locator."""

from __future__ import annotations

import functools

import pytest
from google.protobuf import descriptor_pool, json_format, message_factory

from governance.descriptors import (
    FieldInfo,
    ValidationIssue,
    field_catalogue,
    locate_json_error,
    validate_json,
)
from governance.protoc import compile_protos

# The client telemetry contract, plus test-only messages for maps, timestamps,
# repeated messages, recursion and proto3 `optional`.
CLIENT_TELEMETRY_PROTO = """
syntax = "proto3";
package openagents.sync.v1;

import "google/protobuf/timestamp.proto";

message ClientTelemetryEvent {
  string schema_version = 1; string event_id = 2; int64 occurred_at_unix_ms = 3;
  ClientSurface surface = 4;
  string client_build_id = 5; string app_version = 6; string protocol_version = 7;
  string topic = 8; string topic_class = 9;
  string actor_scope_hash = 10; string session_id = 11;
  oneof event {
    ClientReconnect reconnect = 20; ClientAuthFailure auth_failure = 21;
    ClientReplay replay = 22; ClientDeliveryError delivery_error = 23;
  }
}
enum ClientSurface {
  CLIENT_SURFACE_UNSPECIFIED = 0; CLIENT_SURFACE_WEB = 1; CLIENT_SURFACE_DESKTOP = 2;
  CLIENT_SURFACE_IOS = 3; CLIENT_SURFACE_ONYX = 4;
}
message ClientReconnect {
  uint32 attempt = 1; uint32 backoff_ms = 2; bool resumed = 3; uint64 last_applied_seq = 4;
  string reason_code = 5;
}
message ClientAuthFailure {
  uint32 http_status = 1; string reason_code = 2; bool refresh_attempted = 3;
}
message ClientReplay {
  string status = 1; uint64 requested_after_seq = 2; uint64 oldest_available_seq = 3;
  uint64 head_seq = 4; uint64 catchup_duration_ms = 5;
}
message ClientDeliveryError {
  string channel = 1; string reason_code = 2; uint32 rolling_error_count_5m = 3;
}

// Test-only.
message TestEnvelope {
  ClientTelemetryEvent event = 1;
  map<string, string> attributes = 2;
  repeated TestItem items = 3;
  google.protobuf.Timestamp observed_at = 4;
  TreeNode tree = 5;
  optional string free_note = 6;
  bytes payload = 7;
  double ratio = 8;
}
message TestItem { string name = 1; int32 count = 2; }
message TreeNode { string label = 1; TreeNode child = 2; repeated TreeNode children = 3; }
"""

EVENT = "openagents.sync.v1.ClientTelemetryEvent"
ENVELOPE = "openagents.sync.v1.TestEnvelope"

EMAIL = "alice@example.com"
CARD = "4111111111111111"


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    # Compiling costs a protoc run, so the whole module shares one pool.
    pool = descriptor_pool.DescriptorPool()
    for file_proto in compile_protos({"client_telemetry.proto": CLIENT_TELEMETRY_PROTO}).file:
        pool.Add(file_proto)
    return pool


def _descriptor(name: str = EVENT):
    return _pool().FindMessageTypeByName(name)


def _class(name: str = EVENT) -> type:
    return message_factory.GetMessageClass(_descriptor(name))


def _catalogue(name: str = EVENT) -> dict[str, FieldInfo]:
    return {info.path: info for info in field_catalogue(_descriptor(name))}


def _locate(data: object, name: str = EVENT) -> ValidationIssue:
    message, issue = validate_json(_descriptor(name), _class(name), data)
    assert message is None, "the payload was expected to be rejected"
    assert issue is not None
    return issue


# --------------------------------------------------------------------------- catalogue


def test_catalogue_lists_event_fields_depth_first_in_declaration_order():
    """Top-level fields come in declaration order, each oneof member followed by its fields."""
    paths = [info.path for info in field_catalogue(_descriptor())]
    assert paths[:11] == [
        "schema_version", "event_id", "occurred_at_unix_ms", "surface", "client_build_id",
        "app_version", "protocol_version", "topic", "topic_class", "actor_scope_hash",
        "session_id",
    ]  # fmt: skip
    assert paths[11:17] == [
        "reconnect", "reconnect.attempt", "reconnect.backoff_ms", "reconnect.resumed",
        "reconnect.last_applied_seq", "reconnect.reason_code",
    ]  # fmt: skip
    assert paths[-4:] == [
        "delivery_error", "delivery_error.channel", "delivery_error.reason_code",
        "delivery_error.rolling_error_count_5m",
    ]  # fmt: skip
    assert len(paths) == 11 + 4 + 5 + 3 + 5 + 3


def test_catalogue_describes_scalar_fields():
    """Scalars carry their proto type, number, JSON name, no type name and depth by nesting."""
    catalogue = _catalogue()
    assert catalogue["occurred_at_unix_ms"] == FieldInfo(
        path="occurred_at_unix_ms",
        name="occurred_at_unix_ms",
        number=3,
        type="int64",
        type_name="",
        label="optional",
        oneof="",
        enum_values=(),
        json_name="occurredAtUnixMs",
        depth=0,
    )
    seq = catalogue["reconnect.last_applied_seq"]
    assert (seq.name, seq.type, seq.depth) == ("last_applied_seq", "uint64", 1)
    assert seq.json_name == "lastAppliedSeq"


def test_catalogue_lists_enum_values():
    """Enum fields name their enum type and list every (name, number) pair in order."""
    surface = _catalogue()["surface"]
    assert surface.type == "enum"
    assert surface.type_name == "openagents.sync.v1.ClientSurface"
    assert surface.enum_values == (
        ("CLIENT_SURFACE_UNSPECIFIED", 0), ("CLIENT_SURFACE_WEB", 1),
        ("CLIENT_SURFACE_DESKTOP", 2), ("CLIENT_SURFACE_IOS", 3), ("CLIENT_SURFACE_ONYX", 4),
    )  # fmt: skip
    assert _catalogue()["topic"].enum_values == ()


def test_catalogue_marks_oneof_members():
    """Members of `oneof event` carry the oneof name; their own fields and others do not."""
    catalogue = _catalogue()
    for member in ("reconnect", "auth_failure", "replay", "delivery_error"):
        assert catalogue[member].oneof == "event"
        assert catalogue[member].type == "message"
    assert catalogue["reconnect"].type_name == "openagents.sync.v1.ClientReconnect"
    assert catalogue["reconnect.attempt"].oneof == ""
    assert catalogue["topic"].oneof == ""


def test_catalogue_lists_map_field_as_single_entry():
    """A map<string, string> is one path with a map type and label, and nothing below it."""
    catalogue = _catalogue(ENVELOPE)
    attributes = catalogue["attributes"]
    assert attributes.type == "map<string, string>"
    assert (attributes.label, attributes.type_name, attributes.number) == ("map", "", 2)
    assert not [path for path in catalogue if path.startswith("attributes.")]


def test_catalogue_expands_repeated_nested_messages_without_indices():
    """A repeated message is labelled repeated and its fields appear as `items.name`."""
    catalogue = _catalogue(ENVELOPE)
    assert catalogue["items"].label == "repeated"
    assert catalogue["items"].type_name == "openagents.sync.v1.TestItem"
    assert (catalogue["items.name"].type, catalogue["items.name"].depth) == ("string", 1)
    assert catalogue["items.count"].type == "int32"


def test_catalogue_treats_timestamp_as_a_leaf():
    """Well-known types such as Timestamp are listed but not expanded into seconds/nanos."""
    catalogue = _catalogue(ENVELOPE)
    assert catalogue["observed_at"].type == "message"
    assert catalogue["observed_at"].type_name == "google.protobuf.Timestamp"
    assert not [path for path in catalogue if path.startswith("observed_at.")]


def test_catalogue_expands_nested_event_message():
    """A message field nested two levels down keeps full dotted paths and depth."""
    catalogue = _catalogue(ENVELOPE)
    assert catalogue["event.reconnect.reason_code"].depth == 2
    assert catalogue["event.reconnect"].oneof == "event"


def test_catalogue_terminates_on_recursive_messages():
    """A message type already on the current path is listed as a leaf and not re-entered."""
    catalogue = _catalogue(ENVELOPE)
    tree_paths = [path for path in catalogue if path.startswith("tree")]
    assert tree_paths == ["tree", "tree.label", "tree.child", "tree.children"]
    assert catalogue["tree.child"].type_name == "openagents.sync.v1.TreeNode"
    assert catalogue["tree.children"].label == "repeated"
    # Cataloguing the recursive type itself also stops straight away.
    assert [info.path for info in field_catalogue(_descriptor("openagents.sync.v1.TreeNode"))] == [
        "label", "child", "children",
    ]  # fmt: skip


def test_catalogue_labels_proto3_optional_without_synthetic_oneof():
    """`optional` fields get label proto3_optional and no (synthetic) oneof name."""
    note = _catalogue(ENVELOPE)["free_note"]
    assert (note.label, note.oneof, note.json_name) == ("proto3_optional", "", "freeNote")


# --------------------------------------------------------------------------- accepted input


def test_json_names_and_proto_names_are_both_accepted():
    """lowerCamelCase JSON names and proto names parse, so validate_json returns the message."""
    data = {
        "schemaVersion": "1",
        "occurred_at_unix_ms": "1700000000000",
        "occurredAtUnixMs": 1700000000000,
        "surface": "CLIENT_SURFACE_WEB",
        "authFailure": {"httpStatus": 401, "reason_code": "expired", "refreshAttempted": True},
    }
    message, issue = validate_json(_descriptor(), _class(), data)
    assert issue is None
    assert message.schema_version == "1"
    assert message.occurred_at_unix_ms == 1700000000000
    assert message.auth_failure.http_status == 401
    assert message.auth_failure.refresh_attempted is True


def test_json_format_leniencies_are_accepted():
    """Int64 strings, integral floats, enum numbers and null members are valid proto3 JSON."""
    data = {
        "occurredAtUnixMs": "12",
        "surface": 3,
        "reconnect": None,
        "replay": {"headSeq": "18446744073709551615", "status": "ok"},
    }
    message, issue = validate_json(_descriptor(), _class(), data)
    assert issue is None
    assert message.replay.head_seq == 2**64 - 1
    _, issue = validate_json(_descriptor(), _class(), {"reconnect": {"attempt": 2.0}})
    assert issue is None


def test_locate_on_valid_data_falls_back_to_invalid_event():
    """When the walk finds nothing, locate_json_error returns the generic invalid_event issue."""
    assert locate_json_error(_descriptor(), {"topic": "sync"}) == ValidationIssue(
        "invalid_event", "", "event does not match the schema"
    )


# --------------------------------------------------------------------------- rejections


def test_unknown_field_at_root():
    """An undeclared top-level key is unknown_field at its own name."""
    assert _locate({"topic": "t", "bogus": 1}) == ValidationIssue(
        "unknown_field", "bogus", "unknown field"
    )


def test_unknown_field_nested():
    """An undeclared key inside a nested message is reported with its dotted path."""
    issue = _locate({"reconnect": {"attempt": 1, "bogus": True}})
    assert (issue.code, issue.field) == ("unknown_field", "reconnect.bogus")


def test_string_where_uint32_expected():
    """A non-numeric string for a uint32 is wrong_type at the proto path of the field."""
    issue = _locate({"authFailure": {"httpStatus": "teapot"}})
    assert issue == ValidationIssue("wrong_type", "auth_failure.http_status", "expected an integer")


def test_object_where_string_expected():
    """An object for a string field is wrong_type."""
    assert _locate({"topic": {"a": 1}}) == ValidationIssue(
        "wrong_type", "topic", "expected a string"
    )


def test_array_where_scalar_expected():
    """An array for a scalar field is wrong_type."""
    issue = _locate({"reconnect": {"resumed": [True]}})
    assert (issue.code, issue.field) == ("wrong_type", "reconnect.resumed")


def test_scalar_where_message_expected():
    """A number for a message field is wrong_type asking for an object."""
    assert _locate({"replay": 5}) == ValidationIssue("wrong_type", "replay", "expected an object")


def test_unknown_enum_name():
    """An enum name that is not declared is unknown_enum_value naming the enum type."""
    assert _locate({"surface": "CLIENT_SURFACE_TOASTER"}) == ValidationIssue(
        "unknown_enum_value", "surface", "unknown enum name for openagents.sync.v1.ClientSurface"
    )


@pytest.mark.parametrize("value", [-1, 2**40])
def test_integer_out_of_range_for_uint32(value):
    """Integers outside uint32's range are out_of_range, naming the type."""
    assert _locate({"reconnect": {"attempt": value}}) == ValidationIssue(
        "out_of_range", "reconnect.attempt", "integer out of range for uint32"
    )


def test_fractional_number_for_integer_field():
    """1.5 is not an integer; json_format only accepts integral numbers."""
    issue = _locate({"reconnect": {"backoffMs": 1.5}})
    assert (issue.code, issue.field) == ("wrong_type", "reconnect.backoff_ms")


def test_two_oneof_members():
    """Setting a second member of the same oneof is oneof_conflict on the second member."""
    assert _locate({"reconnect": {"attempt": 1}, "replay": {"status": "ok"}}) == ValidationIssue(
        "oneof_conflict", "replay", "oneof 'event' already set by 'reconnect'"
    )


def test_proto3_optional_given_under_both_names():
    """Naming a proto3 optional field twice trips its synthetic oneof; say so plainly."""
    issue = _locate({"free_note": "a", "freeNote": "b"}, ENVELOPE)
    assert (issue.code, issue.field) == ("oneof_conflict", "free_note")
    assert "_free_note" not in issue.message


@pytest.mark.parametrize(
    ("value", "code"), [("yesterday", "invalid_value"), (1700000000, "wrong_type")]
)
def test_bad_timestamp(value, code):
    """Timestamps must be RFC 3339 strings; other strings and numbers are rejected."""
    issue = _locate({"observedAt": value}, ENVELOPE)
    assert (issue.code, issue.field) == (code, "observed_at")
    assert "RFC 3339" in issue.message


def test_repeated_message_issue_has_index_in_path():
    """Problems inside a repeated message carry the element index."""
    issue = _locate({"items": [{"name": "a"}, {"count": "many"}]}, ENVELOPE)
    assert (issue.code, issue.field) == ("wrong_type", "items[1].count")


def test_repeated_field_requires_array():
    """A repeated field given an object is wrong_type asking for an array."""
    assert _locate({"items": {"name": "a"}}, ENVELOPE) == ValidationIssue(
        "wrong_type", "items", "expected an array"
    )


def test_map_problems_are_reported_on_the_map_field():
    """Map values and non-object maps are reported against the map field, never a key."""
    assert _locate({"attributes": {"plan": 3}}, ENVELOPE) == ValidationIssue(
        "wrong_type", "attributes", "expected a string"
    )
    assert _locate({"attributes": ["plan"]}, ENVELOPE) == ValidationIssue(
        "wrong_type", "attributes", "expected an object"
    )


def test_nested_event_paths_are_fully_qualified():
    """Issues deep inside a nested event keep the whole dotted path."""
    issue = _locate({"event": {"reconnect": {"lastAppliedSeq": -5}}}, ENVELOPE)
    assert issue == ValidationIssue(
        "out_of_range", "event.reconnect.last_applied_seq", "integer out of range for uint64"
    )


def test_overflowing_number_is_a_rejection_not_a_crash():
    """json_format raises a bare OverflowError for huge numbers; validate_json reports it."""
    assert _locate({"ratio": 10**400}, ENVELOPE) == ValidationIssue(
        "out_of_range", "ratio", "number out of range for double"
    )


def test_excessive_nesting_is_rejected():
    """Nesting deeper than json_format's recursion limit is invalid_value, not a crash."""
    tree: dict = {}
    for _ in range(120):
        tree = {"child": tree}
    issue = _locate({"tree": tree}, ENVELOPE)
    assert (issue.code, issue.message) == ("invalid_value", "message nesting is too deep")


def test_non_object_root():
    """A JSON array or string at the root is not_an_object with an empty field path."""
    expected = ValidationIssue("not_an_object", "", "expected a JSON object")
    assert validate_json(_descriptor(), _class(), ["topic"]) == (None, expected)
    assert locate_json_error(_descriptor(), "topic") == expected


def test_first_issue_follows_key_order():
    """Like json_format, the first offending key in document order is the one reported."""
    assert _locate({"topic": 1, "bogus": 2}).field == "topic"
    assert _locate({"bogus": 2, "topic": 1}).field == "bogus"


def test_locate_agrees_with_json_format_on_rejection():
    """Every rejection in this module is also a json_format failure (the walk mirrors it)."""
    for data in ({"reconnect": {"attempt": -1}}, {"surface": "NOPE"}, {"topic": [1]}):
        with pytest.raises(json_format.ParseError):
            json_format.ParseDict(data, _class()())


# --------------------------------------------------------------------------- privacy

PRIVACY_CASES = [
    (EVENT, {"reconnect": {"attempt": EMAIL}}),
    (EVENT, {"reconnect": {"attempt": int(CARD)}}),
    (EVENT, {"topic": {EMAIL: CARD}}),
    (EVENT, {"session_id": [EMAIL, CARD]}),
    (EVENT, {"surface": EMAIL}),
    (EVENT, {"surface": CARD + "0" * 10}),
    (EVENT, {EMAIL: CARD}),
    (EVENT, {CARD: EMAIL}),
    (EVENT, {"reconnect": {EMAIL: 1}}),
    (EVENT, {"reconnect": {"reasonCode": EMAIL}, "replay": {"status": CARD}}),
    (EVENT, {"occurredAtUnixMs": EMAIL}),
    (EVENT, {"replay": EMAIL}),
    (ENVELOPE, {"observedAt": EMAIL}),
    (ENVELOPE, {"observedAt": CARD}),
    (ENVELOPE, {"attributes": {EMAIL: [CARD]}}),
    (ENVELOPE, {"attributes": {CARD: 1}}),
    (ENVELOPE, {"items": [{"name": [EMAIL]}]}),
    (ENVELOPE, {"items": [{"count": CARD + "x"}]}),
    (ENVELOPE, {"payload": CARD + "a"}),
    (ENVELOPE, {"ratio": EMAIL}),
    (ENVELOPE, {"tree": {"child": {"label": {"x": EMAIL}}}}),
]


@pytest.mark.parametrize(("name", "data"), PRIVACY_CASES)
def test_rejections_never_echo_submitted_values(name, data):
    """Neither the field path nor the message contains a planted personal value."""
    issue = _locate(data, name)
    assert issue.code != "invalid_event", "the walk should pinpoint the problem"
    for planted in (EMAIL, CARD):
        assert planted not in issue.field
        assert planted not in issue.message


def test_unknown_keys_that_are_not_identifiers_are_redacted():
    """An unknown key that could be personal data is replaced in the path, not echoed."""
    assert _locate({"reconnect": {EMAIL: 1}}).field == "reconnect.<redacted>"
    assert _locate({CARD: 1}).field == "<redacted>"


@pytest.mark.parametrize(
    "key",
    [
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "AKIAIOSFODNN7EXAMPLE",
        "account_4000123412341234",
    ],
)
def test_unknown_keys_shaped_like_names_but_holding_secrets_are_redacted(key):
    """A key that is a valid identifier but holds a generated secret or number is not echoed."""
    assert _locate({"reconnect": {key: 1}}).field == "reconnect.<redacted>"


def test_unknown_keys_that_read_as_field_names_are_still_named():
    """A plain misspelt field name is echoed, so the client can fix it."""
    assert _locate({"reconnect": {"retry_after_ms2": 1}}).field == "reconnect.retry_after_ms2"
