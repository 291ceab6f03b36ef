"""Tests for the compatibility engine: buf's breaking rules, category by category."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from governance.compatibility import (
    CATEGORIES,
    RULES,
    RuleSet,
    Violation,
    check_against_history,
    check_compatibility,
    is_unstable_package,
    rules_in,
)
from governance.protoc import compile_protos

EVENT = "openagents.sync.v1.ClientTelemetryEvent"
REPO_ROOT = Path(__file__).resolve().parents[2]
TELEMETRY = "openagents/sync/v1/telemetry.proto"

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
def _compiled(files: tuple[tuple[str, str], ...]) -> bytes:
    # Compiling shells out to protoc; cache by sources so each variant compiles once per run.
    return compile_protos(dict(files), include_platform_protos=False).SerializeToString()


def compile_files(files: dict[str, str]) -> descriptor_pb2.FileDescriptorSet:
    """A fresh copy of the compiled set, so a test may mutate it without affecting others."""
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    descriptor_set.ParseFromString(_compiled(tuple(sorted(files.items()))))
    return descriptor_set


def compile_source(source: str) -> descriptor_pb2.FileDescriptorSet:
    return compile_files({TELEMETRY: source})


def edit(old: str, new: str, source: str = BASE) -> str:
    """``source`` with exactly one occurrence of ``old`` replaced by ``new``."""
    assert source.count(old) == 1, f"{old!r} must occur exactly once"
    return source.replace(old, new)


def check(new_source: str, old_source: str = BASE, category: str = "WIRE_JSON") -> list[Violation]:
    return check_compatibility(
        old=compile_source(old_source),
        new=compile_source(new_source),
        message=EVENT,
        rule_set=RuleSet(use=(category,)),
    )


def summary(violations: list[Violation]) -> list[tuple[str, str, str, str]]:
    return [(v.rule, v.path, v.old, v.new) for v in violations]


def rules(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


# -- one minimal previous/current pair per rule (buf's testdata layout: a file before and
# after), checked under every category -----------------------------------------------------

CASE_EVENT = 'syntax = "proto3";\npackage p.v1;\nmessage Event { string id = 1; }\n'
P3 = 'syntax = "proto3";\npackage p.v1;\n'
P2 = 'syntax = "proto2";\npackage p.v1;\n'
ED = 'edition = "2023";\npackage p.v1;\n'
ENUM = "enum E { E_UNSPECIFIED = 0; E_ONE = 1; }\n"
SERVICE = "message M {} message N {}\nservice S { rpc A(M) returns (M); }\n"

FILE_OPTIONS = {
    "FILE_SAME_CC_ENABLE_ARENAS": "cc_enable_arenas = false",
    "FILE_SAME_CC_GENERIC_SERVICES": "cc_generic_services = true",
    "FILE_SAME_CSHARP_NAMESPACE": 'csharp_namespace = "Acme"',
    "FILE_SAME_GO_PACKAGE": 'go_package = "acme/p/v1"',
    "FILE_SAME_JAVA_GENERIC_SERVICES": "java_generic_services = true",
    "FILE_SAME_JAVA_MULTIPLE_FILES": "java_multiple_files = true",
    "FILE_SAME_JAVA_OUTER_CLASSNAME": 'java_outer_classname = "AProto"',
    "FILE_SAME_JAVA_PACKAGE": 'java_package = "com.acme.p.v1"',
    "FILE_SAME_OBJC_CLASS_PREFIX": 'objc_class_prefix = "APX"',
    "FILE_SAME_OPTIMIZE_FOR": "optimize_for = CODE_SIZE",
    "FILE_SAME_PHP_CLASS_PREFIX": 'php_class_prefix = "A"',
    "FILE_SAME_PHP_METADATA_NAMESPACE": 'php_metadata_namespace = "Acme\\\\Meta"',
    "FILE_SAME_PHP_NAMESPACE": 'php_namespace = "Acme\\\\P"',
    "FILE_SAME_PY_GENERIC_SERVICES": "py_generic_services = true",
    "FILE_SAME_RUBY_PACKAGE": 'ruby_package = "Acme::P"',
    "FILE_SAME_SWIFT_PREFIX": 'swift_prefix = "AP"',
}

# rule -> (previous a.proto, current a.proto; None: the file is deleted)
CASES: dict[str, tuple[str, str | None]] = {
    "ENUM_NO_DELETE": (P3 + ENUM, P3),
    "ENUM_SAME_JSON_FORMAT": (
        ED + ENUM,
        ED + ENUM.replace("{", "{ option features.json_format = LEGACY_BEST_EFFORT;"),
    ),
    "ENUM_SAME_TYPE": (ED + ENUM, ED + ENUM.replace("{", "{ option features.enum_type = CLOSED;")),
    "ENUM_VALUE_NO_DELETE": (P3 + ENUM, P3 + "enum E { E_UNSPECIFIED = 0; reserved 1; "
                             'reserved "E_ONE"; }'),
    "ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED": (
        P3 + ENUM, P3 + "enum E { E_UNSPECIFIED = 0; reserved 1; }"
    ),
    "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED": (
        P3 + ENUM, P3 + 'enum E { E_UNSPECIFIED = 0; reserved "E_ONE"; }'
    ),
    "ENUM_VALUE_SAME_NAME": (P3 + ENUM, P3 + ENUM.replace("E_ONE", "E_UNO")),
    "EXTENSION_MESSAGE_NO_DELETE": (
        P2 + "message M { extensions 100 to 199; }", P2 + "message M { extensions 100 to 149; }"
    ),
    "EXTENSION_NO_DELETE": (
        P2 + "message M { extensions 100 to 199; }\nextend M { optional int32 x = 100; }",
        P2 + "message M { extensions 100 to 199; }",
    ),
    "FIELD_NO_DELETE": (
        P3 + "message M { string a = 1; }", P3 + 'message M { reserved 1; reserved "a"; }'
    ),
    "FIELD_NO_DELETE_UNLESS_NAME_RESERVED": (
        P3 + "message M { string a = 1; }", P3 + "message M { reserved 1; }"
    ),
    "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED": (
        P3 + "message M { string a = 1; }", P3 + 'message M { reserved "a"; }'
    ),
    "FIELD_SAME_CARDINALITY": (
        P3 + "message M { string a = 1; }", P3 + "message M { optional string a = 1; }"
    ),
    "FIELD_SAME_CPP_STRING_TYPE": (
        P2 + "message M { optional string a = 1; }",
        P2 + "message M { optional string a = 1 [ctype = CORD]; }",
    ),
    "FIELD_SAME_DEFAULT": (
        P2 + "message M { optional int32 a = 1 [default = 2]; }",
        P2 + "message M { optional int32 a = 1 [default = 3]; }",
    ),
    "FIELD_SAME_JAVA_UTF8_VALIDATION": (
        P2 + "message M { optional string a = 1; }",
        P2 + "option java_string_check_utf8 = true;\nmessage M { optional string a = 1; }",
    ),
    "FIELD_SAME_JSON_NAME": (
        P3 + "message M { string a = 1; }", P3 + 'message M { string a = 1 [json_name = "b"]; }'
    ),
    "FIELD_SAME_JSTYPE": (
        P3 + "message M { int64 a = 1; }", P3 + "message M { int64 a = 1 [jstype = JS_STRING]; }"
    ),
    "FIELD_SAME_NAME": (P3 + "message M { string a = 1; }", P3 + "message M { string b = 1; }"),
    "FIELD_SAME_ONEOF": (
        P3 + "message M { string a = 1; }", P3 + "message M { oneof o { string a = 1; } }"
    ),
    "FIELD_SAME_TYPE": (P3 + "message M { int32 a = 1; }", P3 + "message M { uint32 a = 1; }"),
    "FIELD_SAME_UTF8_VALIDATION": (
        ED + "message M { string a = 1; }",
        ED + "message M { string a = 1 [features.utf8_validation = NONE]; }",
    ),
    "FIELD_WIRE_COMPATIBLE_CARDINALITY": (
        P3 + "message M { string a = 1; }", P3 + "message M { repeated string a = 1; }"
    ),
    "FIELD_WIRE_COMPATIBLE_TYPE": (
        P3 + "message M { string a = 1; }", P3 + "message M { int32 a = 1; }"
    ),
    "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY": (
        P3 + "message M { int32 a = 1; }", P3 + "message M { repeated int32 a = 1; }"
    ),
    "FIELD_WIRE_JSON_COMPATIBLE_TYPE": (
        P3 + "message M { int32 a = 1; }", P3 + "message M { int64 a = 1; }"
    ),
    "FILE_NO_DELETE": (P3 + "message M {}", None),
    **{
        rule: (P3 + "message M {}", P3 + f"option {option};\nmessage M {{}}")
        for rule, option in FILE_OPTIONS.items()
    },
    "FILE_SAME_PACKAGE": (
        'syntax = "proto3";\npackage q.v1;\nmessage M {}',
        'syntax = "proto3";\npackage q.v2;\nmessage M {}',
    ),
    "FILE_SAME_SYNTAX": (
        P3 + "message M { int32 a = 1; }",
        ED + "message M { int32 a = 1 [features.field_presence = IMPLICIT]; }",
    ),
    "MESSAGE_NO_DELETE": (P3 + "message M {}", P3),
    "MESSAGE_NO_REMOVE_STANDARD_DESCRIPTOR_ACCESSOR": (
        P3 + "message M {}", P3 + "message M { option no_standard_descriptor_accessor = true; }"
    ),
    "MESSAGE_SAME_JSON_FORMAT": (
        ED + "message M {}", ED + "message M { option features.json_format = LEGACY_BEST_EFFORT; }"
    ),
    "MESSAGE_SAME_REQUIRED_FIELDS": (
        P2 + "message M { optional int32 a = 1; }",
        P2 + "message M { optional int32 a = 1; required int32 b = 2; }",
    ),
    "ONEOF_NO_DELETE": (
        P3 + "message M { oneof o { int32 a = 1; } }",
        P3 + 'message M { reserved 1; reserved "a"; }',
    ),
    "PACKAGE_ENUM_NO_DELETE": (P3 + ENUM, P3),
    "PACKAGE_EXTENSION_NO_DELETE": (
        P2 + "message M { extensions 100 to 199; }\nextend M { optional int32 x = 100; }",
        P2 + "message M { extensions 100 to 199; }",
    ),
    "PACKAGE_MESSAGE_NO_DELETE": (P3 + "message M {}", P3),
    "PACKAGE_NO_DELETE": ('syntax = "proto3";\npackage q.v1;\nmessage M {}', None),
    "PACKAGE_SERVICE_NO_DELETE": (P3 + SERVICE, P3 + "message M {} message N {}"),
    "RESERVED_ENUM_NO_DELETE": (
        P3 + "enum E { E_UNSPECIFIED = 0; reserved 5 to 9; }",
        P3 + "enum E { E_UNSPECIFIED = 0; reserved 5 to 8; }",
    ),
    "RESERVED_MESSAGE_NO_DELETE": (
        P3 + 'message M { reserved 5; reserved "old"; }', P3 + "message M { reserved 5; }"
    ),
    "RPC_NO_DELETE": (P3 + SERVICE, P3 + "message M {} message N {}\nservice S {}"),
    "RPC_SAME_CLIENT_STREAMING": (P3 + SERVICE, P3 + SERVICE.replace("A(M)", "A(stream M)")),
    "RPC_SAME_IDEMPOTENCY_LEVEL": (
        P3 + SERVICE,
        P3 + SERVICE.replace("(M);", "(M) { option idempotency_level = NO_SIDE_EFFECTS; }"),
    ),
    "RPC_SAME_REQUEST_TYPE": (P3 + SERVICE, P3 + SERVICE.replace("A(M)", "A(N)")),
    "RPC_SAME_RESPONSE_TYPE": (P3 + SERVICE, P3 + SERVICE.replace("returns (M)", "returns (N)")),
    "RPC_SAME_SERVER_STREAMING": (
        P3 + SERVICE, P3 + SERVICE.replace("returns (M)", "returns (stream M)")
    ),
    "SERVICE_NO_DELETE": (P3 + SERVICE, P3 + "message M {} message N {}"),
}


def case_check(rule: str, category: str | tuple[str, ...]) -> list[Violation]:
    previous, current = CASES[rule]
    old = {"p/v1/event.proto": CASE_EVENT, "p/v1/a.proto": previous}
    new = {"p/v1/event.proto": CASE_EVENT}
    if current is not None:
        new["p/v1/a.proto"] = current
    use = (category,) if isinstance(category, str) else category
    return check_compatibility(
        old=compile_files(old),
        new=compile_files(new),
        message="p.v1.Event",
        rule_set=RuleSet(use=use),
        old_files=set(old),
        new_files=set(new),
    )


def test_every_buf_rule_has_a_case():
    """The catalogue is buf v2's rule list, and every rule has a previous/current pair here."""
    assert set(CASES) == set(RULES)
    assert len(RULES) == 64


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_is_reported_exactly_in_its_categories(rule: str, category: str):
    """Each rule's minimal breaking pair is refused by that rule in the categories buf puts
    it in, and that rule is silent in every other category."""
    found = rules(case_check(rule, category))
    assert (rule in found) == (category in RULES[rule]), sorted(found)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_id_can_be_used_alone(rule: str):
    """Naming one rule id in ``use`` checks exactly that rule, as buf's ``use`` allows."""
    assert rules(case_check(rule, rule)) == {rule}


def test_categories_nest_as_buf_documents():
    """FILE covers PACKAGE's wire rules, WIRE_JSON covers WIRE except the WIRE-only
    replacements (buf: WIRE is the most lenient)."""
    wire_only = {"FIELD_WIRE_COMPATIBLE_CARDINALITY", "FIELD_WIRE_COMPATIBLE_TYPE"}
    assert rules_in("WIRE") - rules_in("WIRE_JSON") == wire_only
    assert "FIELD_NO_DELETE" not in rules_in("WIRE_JSON")
    assert "FIELD_SAME_TYPE" not in rules_in("WIRE_JSON")
    assert "FIELD_SAME_CARDINALITY" not in rules_in("WIRE_JSON")


# -- behaviour under the default (WIRE_JSON) and the other categories --------------------


@pytest.mark.parametrize("category", CATEGORIES)
def test_identical_schema_is_compatible(category: str):
    """A revision identical to the previous one has no violations in any category."""
    assert check(BASE, category=category) == []


@pytest.mark.parametrize("category", CATEGORIES)
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
def test_additive_changes_are_accepted(old: str, new: str, category: str):
    """New fields, enum values, oneof members, messages and reservations break nothing."""
    source = edit(old, new) + "message ClientResume { uint64 from_seq = 1; }\n"
    assert check(source, category=category) == []


def test_default_rule_set_is_wire_json():
    """Without a rule set the engine checks buf's WIRE_JSON category."""
    assert RuleSet().rules == rules_in("WIRE_JSON")
    violations = check_compatibility(
        old=compile_source(BASE),
        new=compile_source(edit("uint32 attempt = 1;", "uint64 attempt = 1;")),
        message=EVENT,
    )
    assert rules(violations) == {"FIELD_WIRE_JSON_COMPATIBLE_TYPE"}


def test_deleted_field_without_reservation_names_both_missing_reservations():
    """WIRE_JSON: a plain deletion is refused for the number and for the name, at the dotted
    path from the event, with the old declaration; FIELD_NO_DELETE is FILE's, not here."""
    violations = check(edit("string reason_code = 5;", ""))
    assert summary(violations) == [
        ("FIELD_NO_DELETE_UNLESS_NAME_RESERVED", "reconnect.reason_code",
         "string reason_code = 5", ""),
        ("FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED", "reconnect.reason_code",
         "string reason_code = 5", ""),
    ]  # fmt: skip
    assert "openagents.sync.v1.ClientReconnect" in violations[0].message


def test_deleted_field_with_number_and_name_reserved():
    """Reserving number and name satisfies WIRE_JSON; FILE still wants the field kept."""
    source = edit("string app_version = 6;", 'reserved 6;\n  reserved "app_version";')
    assert check(source) == []
    assert summary(check(source, category="FILE")) == [
        ("FIELD_NO_DELETE", "app_version", "string app_version = 6", 'reserved 6, "app_version"')
    ]


def test_deleted_field_inside_reserved_range_is_accepted():
    """A number covered by a reserved range counts as reserved."""
    source = edit("string app_version = 6;", 'reserved 6 to 7;\n  reserved "app_version";')
    source = edit("string protocol_version = 7;", "", source)
    source = edit('reserved "app_version";', 'reserved "app_version", "protocol_version";', source)
    assert check(source) == []


def test_widening_int_is_json_breaking_but_wire_compatible():
    """uint32 -> uint64 changes the JSON encoding (64-bit integers are strings): refused by
    WIRE_JSON and FILE, accepted by WIRE."""
    source = edit("uint32 attempt = 1;", "uint64 attempt = 1;")
    assert summary(check(source)) == [
        ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "reconnect.attempt", "uint32 attempt = 1",
         "uint64 attempt = 1")
    ]  # fmt: skip
    assert rules(check(source, category="FILE")) == {"FIELD_SAME_TYPE"}
    assert check(source, category="WIRE") == []


def test_int32_uint32_swap_is_wire_json_compatible():
    """int32 <-> uint32 may be exchanged under WIRE_JSON; FILE still refuses the type change."""
    old = edit("string session_id = 11;", "string session_id = 11;\n  int32 level = 12;")
    new = edit("int32 level = 12;", "uint32 level = 12;", old)
    assert check(new, old_source=old) == []
    assert rules(check(new, old_source=old, category="FILE")) == {"FIELD_SAME_TYPE"}


def test_string_to_bytes_is_wire_only():
    """string -> bytes passes WIRE, bytes -> string does not; WIRE_JSON refuses both."""
    old = edit("string session_id = 11;", "string session_id = 11;\n  string blob = 12;")
    new = edit("string blob = 12;", "bytes blob = 12;", old)
    assert check(new, old_source=old, category="WIRE") == []
    assert rules(check(old, old_source=new, category="WIRE")) == {"FIELD_WIRE_COMPATIBLE_TYPE"}
    assert rules(check(new, old_source=old)) == {"FIELD_WIRE_JSON_COMPATIBLE_TYPE"}


def test_enum_moved_with_a_superset_of_values_is_wire_json_compatible():
    """An enum of the same short name holding every old value (plus new ones) is compatible
    under WIRE_JSON (buf's enum subset rule); FILE calls it a type change."""
    moved = BASE.replace("ClientSurface surface = 4;", "v2.ClientSurface surface = 4;")
    moved = moved.replace("enum ClientSurface {", "enum OldSurface {")
    moved += (
        "message v2 {}\n"  # keeps the package name resolvable for the nested enum below
    ).replace("message v2 {}\n", "")
    files_old = {TELEMETRY: BASE}
    surfaces = (
        'syntax = "proto3";\npackage openagents.sync.v1.v2;\nenum ClientSurface {\n'
        "  CLIENT_SURFACE_UNSPECIFIED = 0;\n  CLIENT_SURFACE_WEB = 1;\n  CLIENT_SURFACE_DESKTOP = 2;\n"
        "  CLIENT_SURFACE_IOS = 3;\n  CLIENT_SURFACE_ONYX = 4;\n  CLIENT_SURFACE_TV = 5;\n}\n"
    )
    moved = moved.replace(
        "package openagents.sync.v1;",
        'package openagents.sync.v1;\nimport "openagents/sync/v1/v2/surface.proto";',
    )
    files_new = {TELEMETRY: moved, "openagents/sync/v1/v2/surface.proto": surfaces}
    for category, expected in (("WIRE_JSON", set()), ("WIRE", set()), ("FILE", {"FIELD_SAME_TYPE"})):
        found = check_compatibility(
            old=compile_files(files_old),
            new=compile_files(files_new),
            message=EVENT,
            rule_set=RuleSet(use=(category,)),
        )
        assert rules(found) - {"ENUM_NO_DELETE", "PACKAGE_ENUM_NO_DELETE"} == expected, category


def test_singular_to_repeated_is_refused_in_every_category():
    """Singular -> repeated breaks wire and JSON: each category's own cardinality rule."""
    source = edit("string topic = 8;", "repeated string topic = 8;")
    expected = {
        "WIRE_JSON": "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY",
        "WIRE": "FIELD_WIRE_COMPATIBLE_CARDINALITY",
        "FILE": "FIELD_SAME_CARDINALITY",
        "PACKAGE": "FIELD_SAME_CARDINALITY",
    }
    for category, rule in expected.items():
        violations = check(source, category=category)
        assert summary(violations) == [
            (rule, "topic", "string topic = 8", "repeated string topic = 8")
        ], category
    assert "singular with implicit presence to repeated" in check(source)[0].message


def test_gaining_proto3_optional_changes_presence_only():
    """proto3 `optional` changes presence, not the wire or JSON form: WIRE_JSON and WIRE
    accept it, FILE refuses it as FIELD_SAME_CARDINALITY (its synthetic oneof is no oneof)."""
    source = edit("string session_id = 11;", "optional string session_id = 11;")
    assert check(source) == []
    assert check(source, category="WIRE") == []
    assert summary(check(source, category="FILE")) == [
        ("FIELD_SAME_CARDINALITY", "session_id", "string session_id = 11",
         "optional string session_id = 11")
    ]  # fmt: skip


def test_optional_on_a_message_field_changes_nothing():
    """Message fields always have presence, so marking one `optional` changes nothing."""
    old = edit("string session_id = 11;", "string session_id = 11;\n  ClientReplay last = 12;")
    new = edit("ClientReplay last = 12;", "optional ClientReplay last = 12;", old)
    for category in CATEGORIES:
        assert check(new, old_source=old, category=category) == []


MAP_BASE = edit(
    "string session_id = 11;", "string session_id = 11;\n  map<string, string> attributes = 12;"
)


def test_changed_map_value_type_is_refused_under_the_map_field_path():
    """A map is compared as the map field itself: a new value type is a type change there."""
    new = edit("map<string, string> attributes", "map<string, int64> attributes", MAP_BASE)
    assert summary(check(new, old_source=MAP_BASE)) == [
        ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "attributes", "map<string, string> attributes = 12",
         "map<string, int64> attributes = 12")
    ]  # fmt: skip


def test_repeated_to_map_is_wire_compatible_but_not_json():
    """A repeated entry-shaped message -> map: WIRE accepts it (maps are repeated entries on
    the wire); WIRE_JSON refuses it (a JSON array becomes an object)."""
    old = edit(
        "string session_id = 11;", "string session_id = 11;\n  repeated Pair attributes = 12;"
    ) + "message Pair { string key = 1; string value = 2; }\n"
    new = edit("repeated Pair attributes = 12;", "map<string, string> attributes = 12;", old)
    assert check(new, old_source=old, category="WIRE") == []
    assert summary(check(new, old_source=old)) == [
        ("FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY", "attributes",
         "repeated openagents.sync.v1.Pair attributes = 12", "map<string, string> attributes = 12")
    ]  # fmt: skip


def test_map_to_repeated_scalar_is_refused_in_every_category():
    """A map replaced by a repeated scalar breaks every category (WIRE on the type)."""
    new = edit("map<string, string> attributes", "repeated string attributes", MAP_BASE)
    assert rules(check(new, old_source=MAP_BASE)) == {"FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY"}
    assert rules(check(new, old_source=MAP_BASE, category="WIRE")) == {
        "FIELD_WIRE_COMPATIBLE_TYPE"
    }
    assert rules(check(new, old_source=MAP_BASE, category="FILE")) == {"FIELD_SAME_CARDINALITY"}


def test_map_value_message_fields_are_named_through_the_map():
    """Fields of a map's value message are named with the map field in the path."""
    old = edit("map<string, string> attributes", "map<string, Checkpoint> checkpoints", MAP_BASE)
    old += "message Checkpoint { uint64 seq = 1; string cursor = 2; }\n"
    new = edit("string cursor = 2;", "", old)
    assert {v.path for v in check(new, old_source=old)} == {"checkpoints.cursor"}


def test_editions_presence_change_through_file_features():
    """Editions: a file-wide switch to implicit presence is FILE's FIELD_SAME_CARDINALITY per
    field; presence alone does not break WIRE_JSON."""
    old = 'edition = "2023";\npackage ed.v1;\nmessage Event { string id = 1; Event parent = 2; }\n'
    new = old.replace(
        "package ed.v1;", "package ed.v1;\noption features.field_presence = IMPLICIT;"
    )
    found = check_compatibility(
        old=compile_source(old), new=compile_source(new), message="ed.v1.Event",
        rule_set=RuleSet(use=("FILE",)),
    )  # fmt: skip
    assert summary(found) == [
        ("FIELD_SAME_CARDINALITY", "id", "string id = 1 [features.field_presence = EXPLICIT]",
         "string id = 1 [features.field_presence = IMPLICIT]")
    ]  # fmt: skip
    assert check_compatibility(old=compile_source(old), new=compile_source(new),
                               message="ed.v1.Event") == []  # fmt: skip


# -- the two bugs (regression tests) -------------------------------------------------------

ONEOF_PROTO3 = (
    'syntax = "proto3";\npackage o.v1;\n'
    "message Event { oneof body { uint32 code = 1; Detail detail = 2; } }\n"
    "message Detail { repeated uint32 n = 1; }\n"
)
ONEOF_EDITIONS = ONEOF_PROTO3.replace('syntax = "proto3";', 'edition = "2023";')
ONEOF_PROTO2 = ONEOF_PROTO3.replace('syntax = "proto3";', 'syntax = "proto2";')


@pytest.mark.parametrize("target", [ONEOF_EDITIONS, ONEOF_PROTO2], ids=["editions", "proto2"])
def test_proto3_oneof_member_moving_to_proto2_or_editions_keeps_its_cardinality(target: str):
    """Bug: oneof members always track presence, so a proto3 oneof member that becomes a
    proto2 or editions oneof member changes no cardinality (buf sees none)."""
    cardinality_rules = (
        "FIELD_SAME_CARDINALITY",
        "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY",
        "FIELD_WIRE_COMPATIBLE_CARDINALITY",
    )
    for old, new in ((ONEOF_PROTO3, target), (target, ONEOF_PROTO3)):
        found = check_compatibility(
            old=compile_source(old), new=compile_source(new), message="o.v1.Event",
            rule_set=RuleSet(use=cardinality_rules),
        )  # fmt: skip
        assert found == [], summary(found)


def test_proto3_oneof_member_to_editions_is_only_a_syntax_change_under_file():
    """Under FILE, moving that file from proto3 to editions is FILE_SAME_SYNTAX and nothing
    else (JSON, UTF-8 and enum defaults of edition 2023 match proto3's)."""
    found = check_compatibility(
        old=compile_source(ONEOF_PROTO3), new=compile_source(ONEOF_EDITIONS),
        message="o.v1.Event", rule_set=RuleSet(use=("FILE",)),
    )  # fmt: skip
    assert rules(found) == {"FILE_SAME_SYNTAX"}
    assert found[0].old == 'syntax = "proto3";' and found[0].new == 'edition = "2023";'


DELIMITED_BASE = (
    'edition = "2023";\npackage d.v1;\n'
    "message Event { Detail detail = 1; }\nmessage Detail { uint32 n = 1; }\n"
)
DELIMITED = DELIMITED_BASE.replace(
    "Detail detail = 1;", "Detail detail = 1 [features.message_encoding = DELIMITED];"
)


@pytest.mark.parametrize("category", CATEGORIES)
def test_switching_a_message_field_to_delimited_encoding_is_refused(category: str):
    """Bug: editions ``features.message_encoding = DELIMITED`` turns a length-prefixed
    message field into a group on the wire; every category refuses it as a type change."""
    found = check_compatibility(
        old=compile_source(DELIMITED_BASE), new=compile_source(DELIMITED), message="d.v1.Event",
        rule_set=RuleSet(use=(category,)),
    )  # fmt: skip
    type_rule = {"WIRE_JSON": "FIELD_WIRE_JSON_COMPATIBLE_TYPE", "WIRE": "FIELD_WIRE_COMPATIBLE_TYPE"}
    assert summary(found) == [
        (type_rule.get(category, "FIELD_SAME_TYPE"), "detail",
         "d.v1.Detail detail = 1 [features.field_presence = EXPLICIT]",
         "group d.v1.Detail detail = 1 [features.field_presence = EXPLICIT, "
         "features.message_encoding = DELIMITED]")
    ]  # fmt: skip


GROUP_PROTO2 = (
    'syntax = "proto2";\npackage g.v1;\n'
    "message Event { optional group Detail = 1 { optional uint32 n = 1; } }\n"
)
# What protoc's editions migration writes for the file above: same group, same features.
GROUP_EDITIONS = (
    'edition = "2023";\npackage g.v1;\n'
    "option features.json_format = LEGACY_BEST_EFFORT;\n"
    "message Event {\n  message Detail { uint32 n = 1; }\n"
    "  Detail detail = 1 [features.message_encoding = DELIMITED];\n}\n"
)


@pytest.mark.parametrize("category", ["WIRE_JSON", "WIRE"])
def test_proto2_group_rewritten_as_editions_delimited_field_is_accepted(category: str):
    """Bug: a proto2 group rewritten as an editions delimited message field is the same
    field on the wire and in JSON; no rule refuses it."""
    found = check_compatibility(
        old=compile_source(GROUP_PROTO2), new=compile_source(GROUP_EDITIONS),
        message="g.v1.Event", rule_set=RuleSet(use=(category,)),
    )  # fmt: skip
    assert found == [], summary(found)


# -- every type in the files, paths, declarations, locations ------------------------------


def test_unreachable_enum_is_checked_too():
    """A deleted value of an enum no field uses yet is refused, named by its full name."""
    old = BASE + "enum Channel { CHANNEL_UNSPECIFIED = 0; CHANNEL_SMS = 1; }\n"
    new = edit("CHANNEL_SMS = 1; ", "", old)
    assert summary(check(new, old_source=old)) == [
        ("ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", "openagents.sync.v1.Channel.CHANNEL_SMS",
         "CHANNEL_SMS = 1", ""),
        ("ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED", "openagents.sync.v1.Channel.CHANNEL_SMS",
         "CHANNEL_SMS = 1", ""),
    ]  # fmt: skip


def test_unreachable_message_field_is_checked_too():
    """A message the event does not reach is compared as well, fields by full name."""
    old = BASE + "message Draft { string note = 1; }\n"
    new = edit("string note = 1;", "int32 note = 1;", old)
    assert summary(check(new, old_source=old)) == [
        ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "openagents.sync.v1.Draft.note", "string note = 1",
         "int32 note = 1")
    ]  # fmt: skip


def test_enum_value_path_follows_the_field_using_the_enum():
    """An enum value of an enum the event reaches is named after the field using it."""
    violations = check(edit("CLIENT_SURFACE_ONYX = 4;", "reserved 4;"))
    assert summary(violations) == [
        ("ENUM_VALUE_NO_DELETE_UNLESS_NAME_RESERVED", "surface.CLIENT_SURFACE_ONYX",
         "CLIENT_SURFACE_ONYX = 4", "reserved 4")
    ]  # fmt: skip


def test_renamed_aliases_are_reported_together():
    """Bug: with aliases, every old name of the number must survive; a number whose two
    aliases both changed is one violation naming both old and both new names."""
    old = BASE + (
        "enum Mode { option allow_alias = true; MODE_UNSPECIFIED = 0; MODE_ON = 1; MODE_UP = 1; }\n"
    )
    new = old.replace("MODE_ON = 1; MODE_UP = 1;", "MODE_ENABLED = 1; MODE_ACTIVE = 1;")
    assert summary(check(new, old_source=old)) == [
        ("ENUM_VALUE_SAME_NAME", "openagents.sync.v1.Mode.MODE_ON", "MODE_ON, MODE_UP = 1",
         "MODE_ENABLED, MODE_ACTIVE = 1")
    ]  # fmt: skip
    superset = old.replace("MODE_UP = 1;", "MODE_UP = 1; MODE_HIGH = 1;")
    assert check(superset, old_source=old) == []


def test_renamed_enum_value_is_refused():
    """Renaming an enum value breaks JSON: ENUM_VALUE_SAME_NAME, naming the new value."""
    violations = check(edit("CLIENT_SURFACE_IOS = 3;", "CLIENT_SURFACE_APPLE = 3;"))
    assert summary(violations) == [
        ("ENUM_VALUE_SAME_NAME", "surface.CLIENT_SURFACE_IOS", "CLIENT_SURFACE_IOS = 3",
         "CLIENT_SURFACE_APPLE = 3")
    ]  # fmt: skip


def test_renamed_field_is_refused_by_name_and_json_name():
    """Renaming a field changes its JSON key: FIELD_SAME_NAME and FIELD_SAME_JSON_NAME."""
    violations = check(edit("uint32 attempt = 1;", "uint32 attempts = 1;"))
    assert [v.rule for v in violations] == ["FIELD_SAME_JSON_NAME", "FIELD_SAME_NAME"]


def test_violation_locates_the_new_declaration():
    """Each violation carries the new file and the line of the new declaration (or, for a
    deletion, of the message it was deleted from), for annotations."""
    source = edit("uint32 backoff_ms = 2;", "string backoff_ms = 2;")
    (changed,) = check(source)
    line = source.splitlines().index("  string backoff_ms = 2;") + 1
    assert (changed.file, changed.line) == (TELEMETRY, line)
    deleted = check(edit("string reason_code = 5;", ""))[0]
    message_line = BASE.splitlines().index("message ClientReconnect {") + 1
    assert (deleted.file, deleted.line) == (TELEMETRY, message_line)


def test_describe_prints_rule_path_old_and_new():
    """A refusal line names the rule, the path, the old and the new declaration."""
    (violation,) = check(edit("uint32 attempt = 1;", "string attempt = 1;"))
    line = violation.describe()
    assert line.startswith("FIELD_WIRE_JSON_COMPATIBLE_TYPE at reconnect.attempt: ")
    assert "uint32 attempt = 1 -> string attempt = 1" in line


def test_recursive_message_is_walked_once():
    """A self-referencing message terminates and reports nested changes by their shortest path."""
    tree = "message Node { string label = 1; repeated Node children = 2; }\n"
    old = edit("string session_id = 11;", "string session_id = 11;\n  Node tree = 12;") + tree
    new = old.replace("string label = 1;", "bytes label = 1;")
    assert summary(check(new, old_source=old)) == [
        ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "tree.label", "string label = 1", "bytes label = 1")
    ]


def test_deleted_event_message_is_refused():
    """An event message missing from the new set is MESSAGE_NO_DELETE in every rule set."""
    source = BASE.replace("ClientTelemetryEvent", "ClientTelemetryRecord")
    for category in CATEGORIES:
        violations = check(source, category=category)
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
        ("MESSAGE_NO_DELETE", EVENT, f"message {EVENT}",
         "message openagents.sync.v2.ClientTelemetryEvent")
    ]  # fmt: skip


def test_deleted_message_is_file_rule_only():
    """Deleting a message nothing uses any more is FILE's MESSAGE_NO_DELETE (by full name)
    and PACKAGE's PACKAGE_MESSAGE_NO_DELETE; WIRE_JSON has no type deletion rule."""
    old = BASE + "message Draft { string note = 1; }\n"
    assert check(BASE, old_source=old) == []
    assert summary(check(BASE, old_source=old, category="FILE")) == [
        ("MESSAGE_NO_DELETE", "openagents.sync.v1.Draft", "message openagents.sync.v1.Draft", "")
    ]
    assert rules(check(BASE, old_source=old, category="PACKAGE")) == {"PACKAGE_MESSAGE_NO_DELETE"}


def test_moving_a_message_between_files_of_a_package_is_file_rule_only():
    """Moving a type to another file of the same package breaks FILE, not PACKAGE."""
    base = {"p/v1/event.proto": CASE_EVENT, "p/v1/a.proto": P3 + "message M {}"}
    moved = {"p/v1/event.proto": CASE_EVENT + "message M {}", "p/v1/a.proto": P3}
    for category, expected in (("FILE", {"MESSAGE_NO_DELETE"}), ("PACKAGE", set())):
        found = check_compatibility(
            old=compile_files(base), new=compile_files(moved), message="p.v1.Event",
            rule_set=RuleSet(use=(category,)),
        )  # fmt: skip
        assert rules(found) == expected


def test_unknown_event_message_in_old_set_is_an_error():
    """Naming an event that the old set does not define is a caller error, not a violation."""
    with pytest.raises(ValueError, match="not a message"):
        check_compatibility(
            old=compile_source(BASE), new=compile_source(BASE), message="openagents.Nope"
        )


def test_imports_outside_the_revision_files_are_not_checked():
    """Only the revision's own files are checked: a changed import is left alone."""
    dep_old = 'syntax = "proto3";\npackage dep.v1;\nmessage Thing { string a = 1; }\n'
    dep_new = 'syntax = "proto3";\npackage dep.v1;\nmessage Thing { int32 a = 1; }\n'
    old = {"p/v1/event.proto": CASE_EVENT, "dep/v1/dep.proto": dep_old}
    new = {"p/v1/event.proto": CASE_EVENT, "dep/v1/dep.proto": dep_new}
    everything = check_compatibility(
        old=compile_files(old), new=compile_files(new), message="p.v1.Event"
    )
    assert rules(everything) == {"FIELD_WIRE_JSON_COMPATIBLE_TYPE"}
    own = check_compatibility(
        old=compile_files(old), new=compile_files(new), message="p.v1.Event",
        old_files={"p/v1/event.proto"}, new_files={"p/v1/event.proto"},
    )  # fmt: skip
    assert own == []


def test_violations_are_sorted_by_path_then_rule():
    """Several breaks come back ordered by path, then rule name."""
    source = edit("uint32 attempt = 1;", "uint64 attempts = 1;")
    source = edit("string app_version = 6;", "", source)
    assert [(v.path, v.rule) for v in check(source)] == [
        ("app_version", "FIELD_NO_DELETE_UNLESS_NAME_RESERVED"),
        ("app_version", "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED"),
        ("reconnect.attempt", "FIELD_SAME_JSON_NAME"),
        ("reconnect.attempt", "FIELD_SAME_NAME"),
        ("reconnect.attempt", "FIELD_WIRE_JSON_COMPATIBLE_TYPE"),
    ]


# -- ignore, ignore_only, ignore_unstable_packages -----------------------------------------


def _two_file_break(rule_set: RuleSet, package: str = "p.v1") -> set[tuple[str, str]]:
    """a.proto and b/b.proto each change a field's type; returns (rule, file) found."""
    header = f'syntax = "proto3";\npackage {package};\n'
    event = header + "message Event { string id = 1; }\n"
    old = {"p/v1/event.proto": event, "p/v1/a.proto": header + "message A { int32 x = 1; }",
           "p/v1/b/b.proto": header + "message B { int32 y = 1; }"}  # fmt: skip
    new = {**old, "p/v1/a.proto": header + "message A { string x = 1; }",
           "p/v1/b/b.proto": header + "message B { string y = 1; }"}  # fmt: skip
    found = check_compatibility(
        old=compile_files(old), new=compile_files(new), message=f"{package}.Event",
        rule_set=rule_set,
    )  # fmt: skip
    return {(v.rule, v.file) for v in found}


def test_ignore_skips_files_and_directories():
    """``ignore`` lists files or directories where no rule applies."""
    both = {("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "p/v1/a.proto"),
            ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "p/v1/b/b.proto")}  # fmt: skip
    assert _two_file_break(RuleSet()) == both
    assert _two_file_break(RuleSet(ignore=("p/v1/b",))) == {
        ("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "p/v1/a.proto")
    }
    assert _two_file_break(RuleSet(ignore=("p/v1/a.proto", "p/v1/b/"))) == set()


def test_ignore_only_skips_one_rule_or_category_under_paths():
    """``ignore_only`` maps a rule id or a category to the paths where it does not apply."""
    by_rule = RuleSet(ignore_only={"FIELD_WIRE_JSON_COMPATIBLE_TYPE": ("p/v1/a.proto",)})
    assert _two_file_break(by_rule) == {("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "p/v1/b/b.proto")}
    by_category = RuleSet(ignore_only={"WIRE_JSON": ("p/v1/b",)})
    assert _two_file_break(by_category) == {("FIELD_WIRE_JSON_COMPATIBLE_TYPE", "p/v1/a.proto")}
    other_rule = RuleSet(ignore_only={"FIELD_SAME_NAME": ("p/v1",)})
    assert len(_two_file_break(other_rule)) == 2


def test_ignore_unstable_packages():
    """``ignore_unstable_packages`` skips alpha, beta and test packages, not stable ones."""
    assert _two_file_break(RuleSet(ignore_unstable_packages=True), "p.v1beta1") == set()
    assert len(_two_file_break(RuleSet(), "p.v1beta1")) == 2
    assert len(_two_file_break(RuleSet(ignore_unstable_packages=True), "p.v1")) == 2
    assert [is_unstable_package(p) for p in ("a.v1alpha", "a.v2beta3", "a.v1test", "a.v1p1beta1",
                                              "a.v1", "a.beta", "")] == [
        True, True, True, True, False, False, False
    ]  # fmt: skip


def test_unknown_rule_or_category_is_refused():
    """A rule set naming something buf does not define is an error, not a silent no-op."""
    with pytest.raises(ValueError, match="FIELD_SAME_COLOUR"):
        RuleSet(use=("FIELD_SAME_COLOUR",))
    with pytest.raises(ValueError, match="WIRE_XML"):
        RuleSet(ignore_only={"WIRE_XML": ("a.proto",)})


# -- history ---------------------------------------------------------------------------------

V2_RESERVED = edit("string client_build_id = 5;", 'reserved 5;\n  reserved "client_build_id";')
V3_REUSED = edit("string client_build_id = 5;", "int64 client_build_id = 5;")


def test_history_catches_reuse_of_number_reserved_in_an_intermediate_version():
    """v2 reserves field 5 properly, v3 re-adds 5 with another type: the type change is
    refused against v1, dropping v2's reservations against v2."""
    history = [(1, compile_source(BASE)), (2, compile_source(V2_RESERVED))]
    violations = check_against_history(
        history=history, new=compile_source(V3_REUSED), message=EVENT
    )
    assert [(v.against_version, *summary([v])[0]) for v in violations] == [
        (1, "FIELD_WIRE_JSON_COMPATIBLE_TYPE", "client_build_id", "string client_build_id = 5",
         "int64 client_build_id = 5"),
        (2, "RESERVED_MESSAGE_NO_DELETE", EVENT, "reserved 5", ""),
        (2, "RESERVED_MESSAGE_NO_DELETE", EVENT, 'reserved "client_build_id"', ""),
    ]  # fmt: skip


def test_history_reports_a_repeated_violation_once_against_the_earliest_version():
    """A break with the same old state in several versions is reported once, for the oldest."""
    v2 = edit("string session_id = 11;", "string session_id = 11;\n  string region = 12;")
    history = [(2, compile_source(v2)), (1, compile_source(BASE))]
    new = edit("string app_version = 6;", "", v2)
    violations = check_against_history(history=history, new=compile_source(new), message=EVENT)
    assert {(v.against_version, v.path) for v in violations} == {(1, "app_version")}


def test_history_keeps_each_distinct_old_state():
    """Breaks of the same field against different earlier states are each reported, oldest first."""
    v2 = edit("uint32 attempt = 1;", "uint64 attempt = 1;")
    new = edit("uint32 attempt = 1;", "string attempt = 1;")
    history = [(1, compile_source(BASE)), (2, compile_source(v2))]
    violations = check_against_history(history=history, new=compile_source(new), message=EVENT)
    assert [(v.against_version, v.rule, v.old) for v in violations] == [
        (1, "FIELD_WIRE_JSON_COMPATIBLE_TYPE", "uint32 attempt = 1"),
        (2, "FIELD_WIRE_JSON_COMPATIBLE_TYPE", "uint64 attempt = 1"),
    ]


def test_history_uses_the_rule_set():
    """The history check applies the given rule set to every earlier version."""
    v2 = edit("uint32 attempt = 1;", "uint64 attempt = 1;")
    history = [(1, compile_source(BASE))]
    found = check_against_history(
        history=history, new=compile_source(v2), message=EVENT, rule_set=RuleSet(use=("WIRE",))
    )
    assert found == []


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
