"""Tests for the wire/JSON compatibility checker between schema revisions."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from governance.compatibility import Violation, check_against_history, check_compatibility
from governance.protoc import compile_protos

EVENT = "openagents.sync.v1.ClientTelemetryEvent"
REPO_ROOT = Path(__file__).resolve().parents[2]

BASE = """\
syntax = "proto3";
package openagents.sync.v1;

message ClientTelemetryEvent {
  string schema_version = 1;
  string event_id = 2;
  int64 occurred_at_unix_ms = 3;
  ClientSurface surface = 4;
  string client_build_id = 5;
  string app_version = 6;
  string protocol_version = 7;
  string topic = 8;
  string topic_class = 9;
  string actor_scope_hash = 10;
  string session_id = 11;
  oneof event {
    ClientReconnect reconnect = 20;
    ClientAuthFailure auth_failure = 21;
    ClientReplay replay = 22;
    ClientDeliveryError delivery_error = 23;
  }
}

enum ClientSurface {
  CLIENT_SURFACE_UNSPECIFIED = 0;
  CLIENT_SURFACE_WEB = 1;
  CLIENT_SURFACE_DESKTOP = 2;
  CLIENT_SURFACE_IOS = 3;
  CLIENT_SURFACE_ONYX = 4;
}

message ClientReconnect {
  uint32 attempt = 1;
  uint32 backoff_ms = 2;
  bool resumed = 3;
  uint64 last_applied_seq = 4;
  string reason_code = 5;
}

message ClientAuthFailure {
  uint32 http_status = 1;
  string reason_code = 2;
  bool refresh_attempted = 3;
}

message ClientReplay {
  string status = 1;
  uint64 requested_after_seq = 2;
  uint64 oldest_available_seq = 3;
  uint64 head_seq = 4;
  uint64 catchup_duration_ms = 5;
}

message ClientDeliveryError {
  string channel = 1;
  string reason_code = 2;
  uint32 rolling_error_count_5m = 3;
}
"""


@cache
def _compiled(source: str) -> bytes:
    # Compiling shells out to protoc; cache by source so each variant compiles once per run.
    return compile_protos({"openagents/sync/v1/telemetry.proto": source}).SerializeToString()


def compile_source(source: str) -> descriptor_pb2.FileDescriptorSet:
    """A fresh copy of the compiled set, so a test may mutate it without affecting others."""
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    descriptor_set.ParseFromString(_compiled(source))
    return descriptor_set


def edit(old: str, new: str, source: str = BASE) -> str:
    """``source`` with exactly one occurrence of ``old`` replaced by ``new``."""
    assert source.count(old) == 1, f"{old!r} must occur exactly once"
    return source.replace(old, new)


def check(new_source: str, old_source: str = BASE) -> list[Violation]:
    return check_compatibility(
        old=compile_source(old_source), new=compile_source(new_source), message=EVENT
    )


def summary(violations: list[Violation]) -> list[tuple[str, str, str, str]]:
    return [(v.rule, v.path, v.old, v.new) for v in violations]


def test_identical_schema_is_compatible():
    """A revision identical to the previous one has no violations."""
    assert check(BASE) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("string session_id = 11;", "string session_id = 11;\n  string region = 12;"),
        ("CLIENT_SURFACE_ONYX = 4;", "CLIENT_SURFACE_ONYX = 4;\n  CLIENT_SURFACE_ANDROID = 5;"),
        (
            "ClientDeliveryError delivery_error = 23;",
            "ClientDeliveryError delivery_error = 23;\n    ClientResume resume = 24;",
        ),
        ("uint32 rolling_error_count_5m = 3;", "uint32 rolling_error_count_5m = 3;\n  reserved 4;"),
    ],
    ids=["new-field", "new-enum-value", "new-oneof-member", "reserve-unused-number"],
)
def test_additive_changes_are_accepted(old: str, new: str):
    """New fields, enum values, oneof members, messages and reservations break nothing."""
    source = edit(old, new) + "message ClientResume { uint64 from_seq = 1; }\n"
    assert check(source) == []


def test_deleted_field_without_reservation_is_refused():
    """Dropping a field while reserving neither number nor name is FIELD_NO_DELETE."""
    violations = check(edit("string app_version = 6;", ""))
    assert summary(violations) == [("FIELD_NO_DELETE", "app_version", "string app_version = 6", "")]
    assert "reserve its number and name" in violations[0].message


def test_deleted_field_with_number_and_name_reserved_is_accepted():
    """Reserving both the number (wire) and the name (JSON) makes a deletion safe."""
    source = edit("string app_version = 6;", 'reserved 6;\n  reserved "app_version";')
    assert check(source) == []


def test_deleted_field_inside_reserved_range_is_accepted():
    """A number covered by a reserved range counts as reserved."""
    source = edit("string app_version = 6;", 'reserved 6 to 7;\n  reserved "app_version";')
    source = edit("string protocol_version = 7;", "", source)
    source = edit('reserved "app_version";', 'reserved "app_version", "protocol_version";', source)
    assert check(source) == []


def test_deleted_field_with_only_number_reserved_is_refused():
    """Reserving only the number leaves the JSON name free: FIELD_NO_DELETE_UNLESS_NAME_RESERVED."""
    violations = check(edit("string app_version = 6;", "reserved 6;"))
    assert summary(violations) == [
        (
            "FIELD_NO_DELETE_UNLESS_NAME_RESERVED",
            "app_version",
            "string app_version = 6",
            "reserved 6",
        )
    ]


def test_deleted_field_with_only_name_reserved_is_refused():
    """Reserving only the name leaves the number free: FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED."""
    violations = check(edit("string app_version = 6;", 'reserved "app_version";'))
    assert summary(violations) == [
        (
            "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
            "app_version",
            "string app_version = 6",
            'reserved "app_version"',
        )
    ]


def test_deleted_nested_field_reports_dotted_path():
    """A field deleted from a message reached through the event is reported by its dotted path."""
    violations = check(edit("string reason_code = 5;", ""))
    assert summary(violations) == [
        ("FIELD_NO_DELETE", "reconnect.reason_code", "string reason_code = 5", "")
    ]
    assert "openagents.sync.v1.ClientReconnect" in violations[0].message


def test_renamed_field_is_refused_by_name_and_json_name():
    """Renaming a field changes its JSON key: FIELD_SAME_NAME and FIELD_SAME_JSON_NAME."""
    violations = check(edit("uint32 attempt = 1;", "uint32 attempts = 1;"))
    assert summary(violations) == [
        (
            "FIELD_SAME_JSON_NAME",
            "reconnect.attempt",
            'uint32 attempt = 1 [json_name = "attempt"]',
            'uint32 attempts = 1 [json_name = "attempts"]',
        ),
        ("FIELD_SAME_NAME", "reconnect.attempt", "uint32 attempt = 1", "uint32 attempts = 1"),
    ]


def test_changed_json_name_option_is_refused():
    """An explicit json_name that differs from before is FIELD_SAME_JSON_NAME alone."""
    violations = check(edit("string topic = 8;", 'string topic = 8 [json_name = "topicName"];'))
    assert summary(violations) == [
        (
            "FIELD_SAME_JSON_NAME",
            "topic",
            'string topic = 8 [json_name = "topic"]',
            'string topic = 8 [json_name = "topicName"]',
        )
    ]


def test_changed_scalar_type_is_refused():
    """Even a widening scalar change (uint32 -> uint64) is FIELD_SAME_TYPE under WIRE_JSON."""
    violations = check(edit("uint32 attempt = 1;", "uint64 attempt = 1;"))
    assert summary(violations) == [
        ("FIELD_SAME_TYPE", "reconnect.attempt", "uint32 attempt = 1", "uint64 attempt = 1")
    ]
    assert "uint32 to uint64" in violations[0].message


def test_changed_message_type_is_refused_without_reporting_the_old_type():
    """Pointing a field at another message is FIELD_SAME_TYPE; the old type may then go."""
    source = edit("ClientReplay replay = 22;", "ClientReplayV2 replay = 22;")
    source = edit("message ClientReplay {", "message ClientReplayV2 {", source)
    assert summary(check(source)) == [
        (
            "FIELD_SAME_TYPE",
            "replay",
            "openagents.sync.v1.ClientReplay replay = 22",
            "openagents.sync.v1.ClientReplayV2 replay = 22",
        )
    ]


def test_changed_enum_type_is_refused():
    """Swapping an enum field for a string is FIELD_SAME_TYPE (JSON names vs. free text)."""
    violations = check(edit("ClientSurface surface = 4;", "string surface = 4;"))
    assert summary(violations) == [
        (
            "FIELD_SAME_TYPE",
            "surface",
            "openagents.sync.v1.ClientSurface surface = 4",
            "string surface = 4",
        )
    ]


def test_singular_to_repeated_is_refused():
    """Turning a singular field into a repeated one is FIELD_SAME_CARDINALITY."""
    violations = check(edit("string topic = 8;", "repeated string topic = 8;"))
    assert summary(violations) == [
        ("FIELD_SAME_CARDINALITY", "topic", "string topic = 8", "repeated string topic = 8")
    ]
    assert "singular to repeated" in violations[0].message


def test_gaining_proto3_optional_presence_is_refused_as_cardinality_not_oneof():
    """Adding proto3 `optional` is FIELD_SAME_CARDINALITY; its synthetic oneof is not a oneof."""
    violations = check(edit("string session_id = 11;", "optional string session_id = 11;"))
    assert summary(violations) == [
        (
            "FIELD_SAME_CARDINALITY",
            "session_id",
            "string session_id = 11",
            "optional string session_id = 11",
        )
    ]


def test_optional_on_a_message_field_changes_nothing():
    """Message fields always have presence, so marking one `optional` changes nothing."""
    old = edit("string session_id = 11;", "string session_id = 11;\n  ClientReplay last = 12;")
    new = edit("ClientReplay last = 12;", "optional ClientReplay last = 12;", old)
    assert check(new, old_source=old) == []


MAP_BASE = edit(
    "string session_id = 11;", "string session_id = 11;\n  map<string, string> attributes = 12;"
)


def test_changed_map_value_type_is_refused_under_the_map_field_path():
    """A map is compared as the map field itself: a new value type is FIELD_SAME_TYPE there."""
    new = edit("map<string, string> attributes", "map<string, int64> attributes", MAP_BASE)
    assert summary(check(new, old_source=MAP_BASE)) == [
        (
            "FIELD_SAME_TYPE",
            "attributes",
            "map<string, string> attributes = 12",
            "map<string, int64> attributes = 12",
        )
    ]


def test_map_to_repeated_is_refused_as_cardinality():
    """Replacing a map by a repeated field is FIELD_SAME_CARDINALITY, not also a type change."""
    new = edit("map<string, string> attributes", "repeated string attributes", MAP_BASE)
    assert summary(check(new, old_source=MAP_BASE)) == [
        (
            "FIELD_SAME_CARDINALITY",
            "attributes",
            "map<string, string> attributes = 12",
            "repeated string attributes = 12",
        )
    ]


def test_map_value_message_is_walked():
    """Fields of a map's value message are checked, with the map field in the path."""
    old = edit("map<string, string> attributes", "map<string, Checkpoint> checkpoints", MAP_BASE)
    old += "message Checkpoint { uint64 seq = 1; string cursor = 2; }\n"
    new = edit("string cursor = 2;", "", old)
    assert summary(check(new, old_source=old)) == [
        ("FIELD_NO_DELETE", "checkpoints.cursor", "string cursor = 2", "")
    ]


def test_deleted_map_field_is_described_as_a_map():
    """Deleting a map reports the map declaration, not its synthetic entry message."""
    new = edit("  map<string, string> attributes = 12;\n", "", MAP_BASE)
    assert summary(check(new, old_source=MAP_BASE)) == [
        ("FIELD_NO_DELETE", "attributes", "map<string, string> attributes = 12", "")
    ]


def test_editions_presence_change_through_file_features_is_refused():
    """In editions, a file-wide switch to implicit presence is FIELD_SAME_CARDINALITY per field."""
    old = 'edition = "2023";\npackage ed.v1;\nmessage Event { string id = 1; Event parent = 2; }\n'
    new = old.replace(
        "package ed.v1;", "package ed.v1;\noption features.field_presence = IMPLICIT;"
    )
    violations = check_compatibility(
        old=compile_source(old), new=compile_source(new), message="ed.v1.Event"
    )
    assert summary(violations) == [
        (
            "FIELD_SAME_CARDINALITY",
            "id",
            "string id = 1 [features.field_presence = EXPLICIT]",
            "string id = 1 [features.field_presence = IMPLICIT]",
        )
    ]


def test_field_moved_out_of_oneof_is_refused():
    """Taking a member out of its oneof is FIELD_SAME_ONEOF."""
    source = edit("    ClientReconnect reconnect = 20;\n", "")
    source = edit(
        "string session_id = 11;",
        "string session_id = 11;\n  ClientReconnect reconnect = 20;",
        source,
    )
    assert summary(check(source)) == [
        (
            "FIELD_SAME_ONEOF",
            "reconnect",
            "openagents.sync.v1.ClientReconnect reconnect = 20 in oneof event",
            "openagents.sync.v1.ClientReconnect reconnect = 20",
        )
    ]


def test_field_moved_into_oneof_is_refused():
    """Putting an existing field into a oneof is FIELD_SAME_ONEOF."""
    source = edit("  string topic_class = 9;\n", "")
    source = edit("oneof event {", "oneof event {\n    string topic_class = 9;", source)
    violations = check(source)
    assert summary(violations) == [
        (
            "FIELD_SAME_ONEOF",
            "topic_class",
            "string topic_class = 9",
            "string topic_class = 9 in oneof event",
        )
    ]
    assert "outside any oneof to oneof event" in violations[0].message


def test_field_moved_to_another_oneof_is_refused():
    """Moving a member between oneofs is FIELD_SAME_ONEOF."""
    source = edit("    ClientDeliveryError delivery_error = 23;\n", "")
    source = edit(
        "string session_id = 11;",
        "string session_id = 11;\n  oneof failure { ClientDeliveryError delivery_error = 23; }",
        source,
    )
    assert [v.rule for v in check(source)] == ["FIELD_SAME_ONEOF"]


def test_deleted_enum_value_is_refused():
    """An unreserved enum value deletion is ENUM_VALUE_NO_DELETE at field path + value name."""
    violations = check(edit("CLIENT_SURFACE_ONYX = 4;", ""))
    assert summary(violations) == [
        ("ENUM_VALUE_NO_DELETE", "surface.CLIENT_SURFACE_ONYX", "CLIENT_SURFACE_ONYX = 4", "")
    ]


def test_deleted_enum_value_with_number_and_name_reserved_is_accepted():
    """Reserving both the number and the name of a removed enum value is safe."""
    source = edit("CLIENT_SURFACE_ONYX = 4;", 'reserved 4;\n  reserved "CLIENT_SURFACE_ONYX";')
    assert check(source) == []


def test_deleted_enum_value_with_only_number_reserved_is_refused():
    """JSON writes enum values by name, so the name must be reserved too."""
    violations = check(edit("CLIENT_SURFACE_ONYX = 4;", "reserved 4;"))
    assert summary(violations) == [
        (
            "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED",
            "surface.CLIENT_SURFACE_ONYX",
            "CLIENT_SURFACE_ONYX = 4",
            "reserved 4",
        )
    ]


def test_renamed_enum_value_is_refused():
    """Renaming an enum value breaks JSON: ENUM_VALUE_SAME_NAME."""
    violations = check(edit("CLIENT_SURFACE_IOS = 3;", "CLIENT_SURFACE_APPLE = 3;"))
    assert summary(violations) == [
        (
            "ENUM_VALUE_SAME_NAME",
            "surface.CLIENT_SURFACE_IOS",
            "CLIENT_SURFACE_IOS = 3",
            "CLIENT_SURFACE_APPLE = 3",
        )
    ]


def test_recursive_message_is_walked_once():
    """A self-referencing message terminates and reports nested changes by their shortest path."""
    tree = "message Node { string label = 1; repeated Node children = 2; }\n"
    old = edit("string session_id = 11;", "string session_id = 11;\n  Node tree = 12;") + tree
    new = old.replace("string label = 1;", "bytes label = 1;")
    assert summary(check(new, old_source=old)) == [
        ("FIELD_SAME_TYPE", "tree.label", "string label = 1", "bytes label = 1")
    ]


def test_deleted_event_message_is_refused():
    """An event message missing from the new set is MESSAGE_NO_DELETE, named by type."""
    source = BASE.replace("ClientTelemetryEvent", "ClientTelemetryRecord")
    violations = check(source)
    assert summary(violations) == [("MESSAGE_NO_DELETE", EVENT, f"message {EVENT}", "")]


def test_event_message_moved_to_another_package_is_only_message_no_delete():
    """Re-homing the event (new package) is one MESSAGE_NO_DELETE, not a flood of field errors."""
    moved = BASE.replace("package openagents.sync.v1;", "package openagents.sync.v2;")
    violations = check_compatibility(
        old=compile_source(BASE),
        new=compile_source(moved),
        message="openagents.sync.v2.ClientTelemetryEvent",
        old_message=EVENT,
    )
    assert summary(violations) == [
        (
            "MESSAGE_NO_DELETE",
            EVENT,
            f"message {EVENT}",
            "message openagents.sync.v2.ClientTelemetryEvent",
        )
    ]


def test_reachable_message_missing_from_new_set_is_refused():
    """A reached type absent from a (hand-trimmed) new set is MESSAGE_NO_DELETE by type name."""
    new = compile_source(BASE)
    file = next(f for f in new.file if f.package == "openagents.sync.v1")
    index = next(i for i, m in enumerate(file.message_type) if m.name == "ClientReplay")
    del file.message_type[index]
    violations = check_compatibility(old=compile_source(BASE), new=new, message=EVENT)
    assert summary(violations) == [
        (
            "MESSAGE_NO_DELETE",
            "openagents.sync.v1.ClientReplay",
            "message openagents.sync.v1.ClientReplay",
            "",
        )
    ]


def test_unknown_event_message_in_old_set_is_an_error():
    """Naming an event that the old set does not define is a caller error, not a violation."""
    with pytest.raises(ValueError, match="not a message"):
        check_compatibility(
            old=compile_source(BASE), new=compile_source(BASE), message="openagents.Nope"
        )


def test_well_known_type_fields_are_compared_by_type_name():
    """Well-known types compare like any message; Timestamp -> int64 is one FIELD_SAME_TYPE."""
    import_line = 'import "google/protobuf/timestamp.proto";\n'
    old = edit("package openagents.sync.v1;", "package openagents.sync.v1;\n" + import_line)
    old = edit(
        "string session_id = 11;",
        "string session_id = 11;\n  google.protobuf.Timestamp at = 12;",
        old,
    )
    assert check(old, old_source=old) == []
    new = edit("google.protobuf.Timestamp at = 12;", "int64 at = 12;", old).replace(import_line, "")
    assert summary(check(new, old_source=old)) == [
        ("FIELD_SAME_TYPE", "at", "google.protobuf.Timestamp at = 12", "int64 at = 12")
    ]


def test_violations_are_sorted_by_path_then_rule():
    """Several breaks come back ordered by path, then rule name."""
    source = edit("uint32 attempt = 1;", "uint64 attempts = 1;")
    source = edit("string app_version = 6;", "", source)
    assert [(v.path, v.rule) for v in check(source)] == [
        ("app_version", "FIELD_NO_DELETE"),
        ("reconnect.attempt", "FIELD_SAME_JSON_NAME"),
        ("reconnect.attempt", "FIELD_SAME_NAME"),
        ("reconnect.attempt", "FIELD_SAME_TYPE"),
    ]


V2_RESERVED = edit("string client_build_id = 5;", 'reserved 5;\n  reserved "client_build_id";')
V3_REUSED = edit("string client_build_id = 5;", "int64 client_build_id = 5;")


def test_history_catches_reuse_of_number_reserved_in_an_intermediate_version():
    """v2 reserves field 5 properly, v3 re-adds 5 with another type: refused against v1 only."""
    history = [(1, compile_source(BASE)), (2, compile_source(V2_RESERVED))]
    violations = check_against_history(
        history=history, new=compile_source(V3_REUSED), message=EVENT
    )
    assert [(v.against_version, *summary([v])[0]) for v in violations] == [
        (
            1,
            "FIELD_SAME_TYPE",
            "client_build_id",
            "string client_build_id = 5",
            "int64 client_build_id = 5",
        )
    ]


def test_history_reports_a_repeated_violation_once_against_the_earliest_version():
    """A break with the same old state in several versions is reported once, for the oldest."""
    v2 = edit("string session_id = 11;", "string session_id = 11;\n  string region = 12;")
    history = [(2, compile_source(v2)), (1, compile_source(BASE))]
    new = edit("string app_version = 6;", "", v2)
    violations = check_against_history(history=history, new=compile_source(new), message=EVENT)
    assert [(v.against_version, v.rule, v.path) for v in violations] == [
        (1, "FIELD_NO_DELETE", "app_version")
    ]


def test_history_keeps_each_distinct_old_state():
    """Breaks of the same field against different earlier states are each reported, oldest first."""
    v2 = edit("uint32 attempt = 1;", "uint64 attempt = 1;")
    new = edit("uint32 attempt = 1;", "string attempt = 1;")
    history = [(1, compile_source(BASE)), (2, compile_source(v2))]
    violations = check_against_history(history=history, new=compile_source(new), message=EVENT)
    assert [(v.against_version, v.rule, v.old) for v in violations] == [
        (1, "FIELD_SAME_TYPE", "uint32 attempt = 1"),
        (2, "FIELD_SAME_TYPE", "uint64 attempt = 1"),
    ]


def test_history_against_compatible_versions_is_empty():
    """A purely additive revision passes against the whole history."""
    v2 = edit("CLIENT_SURFACE_ONYX = 4;", "CLIENT_SURFACE_ONYX = 4;\n  CLIENT_SURFACE_ANDROID = 5;")
    history = [(1, compile_source(BASE)), (2, compile_source(v2))]
    new = edit("string session_id = 11;", "string session_id = 11;\n  string region = 12;", v2)
    assert check_against_history(history=history, new=compile_source(new), message=EVENT) == []


def test_module_does_not_import_django():
    """The checker stays pure: importing it pulls in no Django."""
    code = (
        "import sys, governance.compatibility; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=False)
    assert completed.returncode == 0
