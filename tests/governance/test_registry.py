"""Schema registry services: registration, roles, compatibility, lifecycle."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from governance.choices import RevisionStatus
from governance.descriptors import field_catalogue
from governance.models import Schema, SchemaRevision
from governance.schemas import load_schema
from governance.services import (
    LifecycleError,
    SchemaRegistrationError,
    schema_register,
    schema_revision_status_change,
)
from tests.audit_helpers import platform_audit_events
from tests.factories import (
    CLIENT_TELEMETRY_MESSAGE,
    CLIENT_TELEMETRY_PROTO,
    CLIENT_TELEMETRY_SCHEMA,
)

pytestmark = pytest.mark.django_db

COMMON_PROTO = """syntax = "proto3";
package acme.common.v1;
message Device { string model = 1; string os_version = 2; }
"""

ORDER_PROTO = """syntax = "proto3";
package acme.shop.v1;
import "google/protobuf/timestamp.proto";
import "acme/common/v1/common.proto";

message OrderPlaced {
  string event_id = 1;
  google.protobuf.Timestamp occurred_at = 2;
  Status status = 3;
  acme.common.v1.Device device = 4;
  message Line { string sku = 1; uint32 quantity = 2; }
  repeated Line lines = 5;
  oneof payment { Card card = 6; Invoice invoice = 7; }
  map<string, string> attributes = 8;
  enum Status { STATUS_UNSPECIFIED = 0; STATUS_PLACED = 1; STATUS_CANCELLED = 2; }
}
message Card { string network = 1; Expiry expiry = 2; }
message Expiry { uint32 month = 1; uint32 year = 2; }
message Invoice { string reference = 1; }
"""
ORDER_FILES = {"acme/shop/v1/order.proto": ORDER_PROTO, "acme/common/v1/common.proto": COMMON_PROTO}


def register(**overrides):
    arguments = {
        "name": "acme.order_placed.v1",
        "proto_files": ORDER_FILES,
        "message_name": "acme.shop.v1.OrderPlaced",
        "event_class": "service_metric",
        "actor": None,
    }
    arguments.update(overrides)
    return schema_register(**arguments)


def test_register_proto_with_nested_enums_oneofs_and_imports(platform_config):
    """Sources and the compiled descriptor set are stored; the catalogue lists every path."""
    registered = register()
    revision = registered.revision
    assert registered.created and revision.version == 1
    assert revision.proto_files == ORDER_FILES
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    catalogue = {info.path: info for info in field_catalogue(compiled.descriptor)}
    assert catalogue["device.model"].type == "string"
    assert catalogue["card.expiry.year"].oneof == ""
    assert catalogue["card"].oneof == "payment"
    assert catalogue["invoice.reference"].number == 1
    assert catalogue["lines.quantity"].type == "uint32"
    assert catalogue["attributes"].label == "map"
    assert [name for name, _ in catalogue["status"].enum_values] == [
        "STATUS_UNSPECIFIED",
        "STATUS_PLACED",
        "STATUS_CANCELLED",
    ]
    assert catalogue["occurred_at"].type_name == "google.protobuf.Timestamp"
    assert revision.roles["occurred_at"] == "occurred_at"
    assert revision.roles["event_id"] == "event_id"
    assert (
        platform_audit_events("platform.schema.registered")
        .filter(payload__attributes__schema="acme.order_placed.v1")
        .exists()
    )


def test_client_telemetry_contract_registers_as_is(platform_config, capsys, tmp_path):
    """The real contract registers with no extra flags; roles come from conventional names."""
    proto = tmp_path / "client_telemetry.proto"
    proto.write_text(CLIENT_TELEMETRY_PROTO)
    call_command(
        "register_schema",
        str(proto),
        "--message",
        CLIENT_TELEMETRY_MESSAGE,
        "--name",
        CLIENT_TELEMETRY_SCHEMA,
        "--event-class",
        "client_diagnostic",
    )
    revision = SchemaRevision.objects.get(schema__name=CLIENT_TELEMETRY_SCHEMA)
    assert revision.roles == {
        "event_id": "event_id",
        "occurred_at": "occurred_at_unix_ms",
        "surface": "surface",
        "client_build_id": "client_build_id",
        "app_version": "app_version",
        "protocol_version": "protocol_version",
        "session_id": "session_id",
        "actor": "actor_scope_hash",
        "topic": "topic",
    }
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    paths = {info.path for info in field_catalogue(compiled.descriptor)}
    assert {"reconnect.reason_code", "replay.status", "delivery_error.channel"} <= paths
    assert "Registered openagents.sync.client_telemetry.v1 v1" in capsys.readouterr().out


def test_schema_without_occurred_at_is_refused_with_guidance(platform_config):
    """No occurred-at role: refused, saying how to set it; --role fixes it."""
    source = 'syntax = "proto3"; package p; message E { string id = 1; int64 ts = 2; }'
    with pytest.raises(SchemaRegistrationError) as refused:
        register(name="p.e.v1", proto_files={"e.proto": source}, message_name="p.E")
    assert refused.value.code == "invalid_roles"
    assert "--role occurred_at=FIELD_PATH" in refused.value.errors[0]
    assert not Schema.objects.filter(name="p.e.v1").exists()
    registered = register(
        name="p.e.v1",
        proto_files={"e.proto": source},
        message_name="p.E",
        roles={"occurred_at": "ts", "event_id": "id"},
    )
    assert registered.revision.roles["occurred_at"] == "ts"


def test_role_option_read_from_a_dynamically_loaded_pool(platform_config):
    """Platform field options on an uploaded schema are honoured (role and hash policy)."""
    source = """syntax = "proto3"; package p;
import "telemetry/v1/options.proto";
message E {
  int64 when_ms = 1 [(telemetry.v1.role) = FIELD_ROLE_OCCURRED_AT];
  string who = 2 [(telemetry.v1.role) = FIELD_ROLE_ACTOR,
                  (telemetry.v1.policy) = {classification: CLASSIFICATION_PERSONAL,
                                           action: REDACTION_ACTION_HASH}];
}"""
    revision = register(name="p.opt.v1", proto_files={"e.proto": source}, message_name="p.E")
    assert revision.revision.roles == {"occurred_at": "when_ms", "actor": "who"}


@pytest.mark.parametrize(
    ("files", "message", "code", "fragment"),
    [
        (
            {"bad.proto": 'syntax = "proto3"; message X { strin a = 1; }'},
            "X",
            "proto_compile_error",
            "bad.proto:1:",
        ),
        (
            {"bad.proto": 'syntax = "proto3"; import "missing.proto"; message X {}'},
            "X",
            "proto_compile_error",
            "missing.proto",
        ),
        (ORDER_FILES, "acme.shop.v1.Missing", "message_not_found", "acme.shop.v1.OrderPlaced"),
        ({"../evil.proto": 'syntax = "proto3";'}, "X", "proto_compile_error", "relative"),
    ],
)
def test_bad_sources_are_refused_and_nothing_is_stored(
    platform_config, files, message, code, fragment
):
    """Compile errors carry protoc's file:line:col lines; a missing message lists what exists."""
    with pytest.raises(SchemaRegistrationError) as refused:
        register(name="bad.v1", proto_files=files, message_name=message)
    assert refused.value.code == code
    assert any(fragment in line for line in refused.value.errors), refused.value.errors
    assert not Schema.objects.filter(name="bad.v1").exists()


def test_unknown_event_class_and_missing_class(platform_config):
    """A new schema needs an existing event class."""
    with pytest.raises(SchemaRegistrationError) as missing:
        register(event_class=None)
    assert missing.value.code == "event_class_required"
    with pytest.raises(SchemaRegistrationError) as unknown:
        register(event_class="nope")
    assert unknown.value.code == "unknown_event_class"


def test_additive_change_is_accepted_as_a_new_revision(platform_config):
    """New fields and enum values: accepted as v2; identical sources: a no-op."""
    register()
    additive = ORDER_PROTO.replace(
        "map<string, string> attributes = 8;",
        "map<string, string> attributes = 8;\n  string coupon = 9;",
    ).replace("STATUS_CANCELLED = 2;", "STATUS_CANCELLED = 2; STATUS_REFUNDED = 3;")
    files = {**ORDER_FILES, "acme/shop/v1/order.proto": additive}
    second = register(proto_files=files)
    assert second.created and second.revision.version == 2
    again = register(proto_files=files)
    assert not again.created and again.revision.pk == second.revision.pk


@pytest.mark.parametrize(
    ("old", "new", "rule", "path"),
    [
        (
            "string sku = 1; uint32 quantity = 2;",
            "string sku = 1;",
            "FIELD_NO_DELETE_UNLESS_NUMBER_RESERVED",
            "lines.quantity",
        ),
        (
            "uint32 quantity = 2;",
            "uint64 quantity = 2;",
            "FIELD_WIRE_JSON_COMPATIBLE_TYPE",
            "lines.quantity",
        ),
        ("uint32 quantity = 2;", "uint32 qty = 2;", "FIELD_SAME_JSON_NAME", "lines.quantity"),
        (
            "repeated Line lines = 5;",
            "Line lines = 5;",
            "FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY",
            "lines",
        ),
        (
            "STATUS_CANCELLED = 2;",
            "",
            "ENUM_VALUE_NO_DELETE_UNLESS_NUMBER_RESERVED",
            "status.STATUS_CANCELLED",
        ),
        (
            "oneof payment { Card card = 6; Invoice invoice = 7; }",
            "Card card = 6; oneof payment { Invoice invoice = 7; }",
            "FIELD_SAME_ONEOF",
            "card",
        ),
        (
            "message OrderPlaced {",
            "message OrderWasPlaced {",
            "MESSAGE_NO_DELETE",
            "acme.shop.v1.OrderPlaced",
        ),
    ],
)
def test_breaking_changes_are_refused_with_rule_and_path(platform_config, old, new, rule, path):
    """Each breaking change is refused naming the buf rule and the field path; nothing stored."""
    register()
    assert old in ORDER_PROTO
    files = {**ORDER_FILES, "acme/shop/v1/order.proto": ORDER_PROTO.replace(old, new)}
    message = (
        "acme.shop.v1.OrderWasPlaced" if "OrderWasPlaced" in new else "acme.shop.v1.OrderPlaced"
    )
    with pytest.raises(SchemaRegistrationError) as refused:
        register(proto_files=files, message_name=message)
    assert refused.value.code == "incompatible_change"
    found = {(v.rule, v.path) for v in refused.value.violations}
    assert (rule, path) in found, found
    assert all(v.against_version == 1 for v in refused.value.violations)
    assert SchemaRevision.objects.filter(schema__name="acme.order_placed.v1").count() == 1


def test_compatibility_is_checked_against_every_earlier_revision(platform_config):
    """A field deleted properly in v2 cannot come back with another type in v3 (checked vs v1)."""
    register()
    reserved = ORDER_PROTO.replace(
        "map<string, string> attributes = 8;", 'reserved 8; reserved "attributes";'
    )
    register(proto_files={**ORDER_FILES, "acme/shop/v1/order.proto": reserved})
    reused = ORDER_PROTO.replace("map<string, string> attributes = 8;", "string attributes = 8;")
    with pytest.raises(SchemaRegistrationError) as refused:
        register(proto_files={**ORDER_FILES, "acme/shop/v1/order.proto": reused})
    rules = {(v.rule, v.against_version) for v in refused.value.violations}
    assert ("FIELD_WIRE_JSON_COMPATIBLE_CARDINALITY", 1) in rules


def test_lifecycle_transitions(platform_config):
    """draft -> active -> deprecated -> retired; retired is final; each change is audited."""
    revision = register(status=RevisionStatus.DRAFT).revision
    for status in (RevisionStatus.ACTIVE, RevisionStatus.DEPRECATED, RevisionStatus.RETIRED):
        revision = schema_revision_status_change(revision=revision, status=status, actor=None)
        assert revision.status == status
    with pytest.raises(LifecycleError):
        schema_revision_status_change(revision=revision, status=RevisionStatus.ACTIVE, actor=None)
    assert platform_audit_events("platform.schema.status_changed").count() == 3


def test_register_command_reports_incompatibility(platform_config, tmp_path):
    """The command exits with an error listing each violation with its rule name."""
    register()
    order = tmp_path / "acme/shop/v1/order.proto"
    order.parent.mkdir(parents=True)
    order.write_text(ORDER_PROTO.replace("uint32 quantity = 2;", "string quantity = 2;"))
    common = tmp_path / "acme/common/v1/common.proto"
    common.parent.mkdir(parents=True)
    common.write_text(COMMON_PROTO)
    with pytest.raises(CommandError) as refused:
        call_command(
            "register_schema",
            str(order),
            str(common),
            "--proto-path",
            str(tmp_path),
            "--message",
            "acme.shop.v1.OrderPlaced",
            "--name",
            "acme.order_placed.v1",
        )
    assert "incompatible_change" in str(refused.value)
    assert "FIELD_WIRE_JSON_COMPATIBLE_TYPE at lines.quantity" in str(refused.value)
    assert "uint32 quantity = 2 -> string quantity = 2" in str(refused.value)


def test_register_command_rejects_malformed_role(platform_config, tmp_path):
    """--role must be ROLE=FIELD_PATH."""
    proto = tmp_path / "e.proto"
    proto.write_text(ORDER_PROTO)
    with pytest.raises(CommandError, match="ROLE=FIELD_PATH"):
        call_command("register_schema", str(proto), "--message", "x", "--name", "y", "--role", "z")
