"""The prepare step without a database: a plan compiled from a .proto, a resolver that is a
dictionary, and each check of one event (schema, validation, size, redaction before the
envelope, skew, retention, scope, NUL) answered by a new value, never a patched one."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from functools import cache
from types import MappingProxyType

import pytest

from governance.choices import FieldRole
from governance.envelope import envelope_reader_compile
from governance.fastdict import compile_dict_renderer
from governance.fastjson import compile_json_parser
from governance.plans import SchemaPlan, SchemaRefusal
from governance.protoc import compile_protos
from governance.redaction import PolicySpec, redaction_plan_compile
from governance.scanners import BUILTIN_RULES, scanner_compile, sensitive_key_matcher
from governance.schemas import load_schema
from ingest.pipeline import prepare
from ingest.pipeline.types import IngestContext, KeyScope, PreparedEvent, RawItem, Rejection

PROTO = """syntax = "proto3";
package shop.v1;
import "google/protobuf/timestamp.proto";
message Purchase {
  string order_id = 1;
  google.protobuf.Timestamp occurred_at = 2;
  string user_email = 3;
  string note = 4;
  string source = 5;
  int64 amount_cents = 6;
}
"""
NAME = "shop.purchase.v1"
POLICIES = {
    "order_id": PolicySpec("internal", "keep"),
    "occurred_at": PolicySpec("internal", "keep"),
    "user_email": PolicySpec("personal", "hash"),
    "note": PolicySpec("internal", "keep", scan=True),
    "source": PolicySpec("internal", "keep"),
    "amount_cents": PolicySpec("internal", "keep"),
}
ROLES = {
    FieldRole.EVENT_ID: "order_id",
    FieldRole.OCCURRED_AT: "occurred_at",
    FieldRole.ACTOR: "user_email",
    FieldRole.SOURCE: "source",
}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@cache
def plan() -> SchemaPlan:
    compiled = load_schema(
        compile_protos({"shop/v1/purchase.proto": PROTO}).SerializeToString(), "shop.v1.Purchase"
    )
    return SchemaPlan(
        schema_name=NAME,
        event_class="client_diagnostic",
        retention_days=30,
        revision_id=7,
        version=1,
        status="active",
        compiled=compiled,
        roles=MappingProxyType(dict(ROLES)),
        redaction=redaction_plan_compile(
            compiled.descriptor,
            POLICIES,
            key_id="k1",
            key="test-key",
            scanner=scanner_compile(BUILTIN_RULES, key_id="k1", key="test-key"),
            sensitive_key=sensitive_key_matcher(),
        ),
        json_parser=compile_json_parser(compiled.descriptor, compiled.message_class),
        envelope=envelope_reader_compile(compiled.descriptor, ROLES),
        dict_renderer=compile_dict_renderer(compiled.descriptor),
    )


class DictResolver:
    """A resolver over a dictionary: what the plan cache answers, with no database."""

    def __init__(self, plans: dict[str, SchemaPlan | SchemaRefusal]) -> None:
        self.plans = plans
        self.lookups = 0

    def get(self, schema_name: str, version: int | None = None):
        self.lookups += 1
        return self.plans.get(schema_name)

    def event_class_of(self, schema_name: str) -> str | None:
        found = self.plans.get(schema_name.partition("@")[0])
        return found.event_class if isinstance(found, SchemaPlan) else None


def event(**overrides) -> dict:
    body = {
        "order_id": "o-1",
        "occurred_at": (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        "user_email": "ada@example.test",
        "note": "thanks",
        "amount_cents": "1999",
    }
    body.update(overrides)
    return body


ANY_SCOPE = KeyScope()


def run(body, *, schema: str = NAME, scope: KeyScope = ANY_SCOPE, plans=None):
    context = IngestContext(source="shop-web", received_at=NOW, scope=scope)
    rules = prepare.BatchRules(context, DictResolver(plans if plans is not None else {NAME: plan()}))
    return prepare.prepare_event(RawItem(schema, body), context, rules)


def test_a_valid_event_is_prepared_with_its_envelope_read_after_redaction():
    """The actor is the hashed e-mail (redaction came first); ids, time and source are set."""
    prepared = run(event())
    assert isinstance(prepared, PreparedEvent)
    assert prepared.event_id == "o-1"
    assert prepared.source == "shop-web"  # no source field value: the key's
    assert prepared.occurred_at == NOW - timedelta(minutes=5)
    assert prepared.actor_hash.startswith("k1:")
    assert prepared.payload["user_email"] == prepared.actor_hash
    assert "ada@example.test" not in prepared.payload_json
    assert ("user_email", "hash") in {(path, rule.split(":")[0]) for path, rule in prepared.redactions}
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.event_id = "changed"  # type: ignore[misc]


def test_scanned_free_text_is_redacted_before_storage():
    """A card number typed into a kept, scanned field never reaches the payload."""
    prepared = run(event(note="card 4111 1111 1111 1111 please"))
    assert isinstance(prepared, PreparedEvent)
    assert "4111 1111 1111 1111" not in prepared.payload_json
    assert prepared.redactions


@pytest.mark.parametrize(
    ("body", "schema", "code", "field"),
    [
        (event(), "", "missing_schema", "schema"),
        (event(), "shop.refund.v1", "unknown_schema", "schema"),
        (event(), f"{NAME}@x", "unknown_schema", "schema"),
        ([1, 2], NAME, "not_an_object", ""),
        (event(amount_cents="lots"), NAME, "wrong_type", "amount_cents"),
        (event(extra=1), NAME, "unknown_field", "extra"),
        (event(occurred_at=(NOW + timedelta(hours=1)).isoformat()), NAME, "clock_skew", "occurred_at"),
        (event(occurred_at=(NOW - timedelta(days=31)).isoformat()), NAME, "expired", "occurred_at"),
        (event(order_id=""), NAME, "missing_field", "order_id"),
        (event(note="a\x00b"), NAME, "invalid_value", "note"),
        (event(note="x" * 70_000), NAME, "event_too_large", ""),
    ],
)
def test_each_check_rejects_with_code_and_path(body, schema, code, field):
    """Every refusal names its code and field path, and never the submitted value."""
    rejected = run(body, schema=schema)
    assert isinstance(rejected, Rejection)
    assert (rejected.code, rejected.field) == (code, field)
    assert "ada@example.test" not in rejected.message


def test_a_refused_schema_and_a_forbidden_one_are_rejections():
    """The resolver's refusal and the key's scope both answer per event."""
    refused = run(event(), plans={NAME: SchemaRefusal("schema_retired", "the revision is retired")})
    assert (refused.code, refused.field) == ("schema_retired", "schema")
    forbidden = run(event(), scope=KeyScope(schemas=("other.*",)))
    assert (forbidden.code, forbidden.field) == ("forbidden_schema", "schema")
    elsewhere = run(event(source="billing"), scope=KeyScope(sources=frozenset({"shop-web"})))
    assert elsewhere.code == "forbidden_source"


def test_a_batch_resolves_each_schema_name_once():
    """Plans and labels come from one resolution per name per batch, not one per event."""
    context = IngestContext(source="shop-web", received_at=NOW)
    resolver = DictResolver({NAME: plan()})
    rules = prepare.BatchRules(context, resolver)
    outcomes = [
        prepare.prepare_event(RawItem(NAME, event(order_id=f"o-{i}")), context, rules)
        for i in range(20)
    ]
    assert all(isinstance(outcome, PreparedEvent) for outcome in outcomes)
    assert resolver.lookups == 1
    assert rules.resolve(NAME).labels == ("client_diagnostic", NAME)
    assert rules.resolve("nobody.v1").labels == ("unknown", "unknown")
