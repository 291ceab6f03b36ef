"""The redaction engine: every action, fail-closed unclassified fields, scanners, map keys."""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

import pytest
from google.protobuf import json_format

from governance.hashing import keyed_hash
from governance.protoc import compile_protos
from governance.redaction import (
    PolicySpec,
    _apply,
    _parents,
    redact_message,
    redaction_plan_compile,
)
from governance.scanners import BUILTIN_RULES, scanner_compile, sensitive_key_matcher
from governance.schemas import load_schema

PROTO = """syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
message Event {
  string user_id = 1;
  string card = 2;
  string note = 3;
  string client_ip = 4;
  google.protobuf.Timestamp seen_at = 5;
  int64 seen_ms = 6;
  string password = 7;
  map<string, string> attributes = 8;
  Actor actor = 9;
  repeated Line lines = 10;
  string actor_scope_hash = 11;
  uint32 count = 12;
  string secret_note = 13;
  repeated string tags = 14;
}
message Actor { string email = 1; string display_name = 2; }
message Line { string sku = 1; string buyer_email = 2; }
"""
KEY_ID, KEY = "k1", "test-key"
ALL_KEEP = {
    path: PolicySpec("internal", "keep")
    for path in [
        "user_id",
        "card",
        "note",
        "client_ip",
        "seen_at",
        "seen_ms",
        "password",
        "attributes",
        "actor.email",
        "actor.display_name",
        "lines.sku",
        "lines.buyer_email",
        "actor_scope_hash",
        "count",
        "secret_note",
        "tags",
    ]
}


@cache
def compiled():
    return load_schema(compile_protos({"e.proto": PROTO}).SerializeToString(), "t.Event")


def plan(
    overrides: dict[str, PolicySpec] | None = None,
    *,
    unclassified="drop",
    missing=(),
    unhashed="reject",
):
    policies = {**ALL_KEEP, **(overrides or {})}
    for path in missing:
        policies.pop(path)
    return redaction_plan_compile(
        compiled().descriptor,
        policies,
        key_id=KEY_ID,
        key=KEY,
        scanner=scanner_compile(BUILTIN_RULES, key_id=KEY_ID, key=KEY),
        sensitive_key=sensitive_key_matcher(),
        unclassified=unclassified,
        unhashed_pseudonym=unhashed,
    )


def run(event: dict, redaction_plan):
    message = json_format.ParseDict(event, compiled().message_class())
    outcome = redact_message(redaction_plan, message)
    return json_format.MessageToDict(message, preserving_proto_field_name=True), outcome


def test_plain_keep_of_non_strings_needs_no_work():
    """A fully kept schema's plan has the always-scanned map and the kept strings (scanned
    for secrets and personal data); kept numbers and timestamps need no work."""
    redaction_plan = plan()
    assert {rule.dotted for rule in redaction_plan.rules} == {
        path
        for path in ALL_KEEP
        if path not in ("seen_at", "seen_ms", "count", "attributes")
    } | {"attributes"}
    assert all(rule.secrets_scan for rule in redaction_plan.rules if rule.dotted != "attributes")


def test_kept_strings_without_scan_are_scanned_for_secrets_and_personal_data():
    """An e-mail, a card, a token in a kept internal field is redacted though the policy
    did not ask for scan; a UUID there is an identifier and stays as sent."""
    uuid = "965eda32-dae4-4550-8201-e2bd73ab4876"
    out, outcome = run(
        {
            "note": "alice@example.com",
            "card": "4111 1111 1111 1111",
            "user_id": uuid,
            "actor": {"display_name": "ghp_" + "a" * 36},
            "lines": [{"sku": f"{uuid} bob@example.com"}],
            "tags": ["plain", "carol@example.com"],
        },
        plan(),
    )
    assert out["note"] == "[email]"
    assert out["card"] == "[credit_card]"
    assert out["user_id"] == uuid
    assert out["actor"]["display_name"] == "[api_key]"
    assert "bob@example.com" not in out["lines"][0]["sku"]
    assert out["tags"] == ["plain", "[email]"]
    assert ("note", "scanner:email") in outcome.redactions
    assert not [entry for entry in outcome.redactions if entry[0] == "user_id"]


def test_hash_is_keyed_and_prefixed():
    """hash: HMAC-SHA256 under the active key, 'k1:' prefix; nested and repeated paths too."""
    redaction_plan = plan(
        {
            "user_id": PolicySpec("pseudonymous_id", "hash"),
            "actor.email": PolicySpec("personal", "hash"),
            "lines.buyer_email": PolicySpec("personal", "hash"),
            "tags": PolicySpec("personal", "hash"),
        }
    )
    out, outcome = run(
        {
            "user_id": "user_42",
            "actor": {"email": "a@x.test"},
            "lines": [{"buyer_email": "b@x.test"}, {"buyer_email": "c@x.test"}],
            "tags": ["t1", "t2"],
        },
        redaction_plan,
    )
    assert out["user_id"] == keyed_hash("user_42", key_id=KEY_ID, key=KEY)
    assert out["actor"]["email"] == keyed_hash("a@x.test", key_id=KEY_ID, key=KEY)
    assert [line["buyer_email"] for line in out["lines"]] == [
        keyed_hash("b@x.test", key_id=KEY_ID, key=KEY),
        keyed_hash("c@x.test", key_id=KEY_ID, key=KEY),
    ]
    assert out["tags"][0] == keyed_hash("t1", key_id=KEY_ID, key=KEY)
    assert ("user_id", "hash") in outcome.redactions
    assert ("lines.buyer_email", "hash") in outcome.redactions


def test_mask_and_truncate():
    """mask keeps the last N characters; truncate keeps the first N."""
    redaction_plan = plan(
        {
            "card": PolicySpec("sensitive", "mask", keep_chars=4),
            "note": PolicySpec("internal", "truncate", keep_chars=5),
        }
    )
    out, _ = run({"card": "4111111111111111", "note": "hello world"}, redaction_plan)
    assert out["card"] == "************1111"
    assert out["note"] == "hello"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("203.0.113.77", "203.0.113.0/24"), ("2001:db8:abcd:12::1", "2001:db8:abcd::/48")],
)
def test_generalize_ip(value, expected):
    """generalize: IPv4 to /24, IPv6 to /48."""
    out, outcome = run(
        {"client_ip": value}, plan({"client_ip": PolicySpec("personal", "generalize")})
    )
    assert out["client_ip"] == expected
    assert outcome.redactions == [("client_ip", "generalize")]


def test_generalize_non_ip_string_is_dropped():
    """A value that cannot be generalised is dropped rather than kept."""
    out, outcome = run(
        {"client_ip": "not-an-ip"}, plan({"client_ip": PolicySpec("personal", "generalize")})
    )
    assert "client_ip" not in out
    assert outcome.redactions == [("client_ip", "generalize:drop")]


def test_generalize_times_to_the_hour():
    """Timestamps and unix-millisecond integers are floored to the hour."""
    redaction_plan = plan(
        {
            "seen_at": PolicySpec("personal", "generalize"),
            "seen_ms": PolicySpec("personal", "generalize"),
        }
    )
    out, _ = run({"seen_at": "2026-11-24T13:47:12.5Z", "seen_ms": "1771700415123"}, redaction_plan)
    assert out["seen_at"] == "2026-11-24T13:00:00Z"
    assert out["seen_ms"] == str(1771700415123 // 3_600_000 * 3_600_000)


def test_drop_and_hash_of_a_number():
    """drop removes the field; hash of a number cannot be stored, so it is dropped."""
    redaction_plan = plan(
        {
            "password": PolicySpec("secret", "drop"),
            "count": PolicySpec("personal", "hash"),
        }
    )
    out, outcome = run({"password": "hunter2", "count": 7}, redaction_plan)
    assert "password" not in out and "count" not in out
    assert set(outcome.redactions) == {("password", "drop"), ("count", "hash:drop")}


def test_reject_event():
    """reject_event: an event carrying the field is refused, naming the path only."""
    redaction_plan = plan({"secret_note": PolicySpec("secret", "reject_event")})
    _, outcome = run({"secret_note": "the launch code is 0000"}, redaction_plan)
    assert outcome.rejection.code == "policy_rejected"
    assert outcome.rejection.field == "secret_note"
    assert "0000" not in outcome.rejection.message
    _, absent = run({"note": "fine"}, redaction_plan)
    assert absent.rejection is None


def test_unclassified_fields_fail_closed():
    """No classification: dropped by default, or the event rejected when configured."""
    out, outcome = run({"note": "x", "card": "4111"}, plan(missing=["card"]))
    assert "card" not in out and out["note"] == "x"
    assert outcome.redactions == [("card", "unclassified")]
    _, rejected = run({"card": "4111"}, plan(missing=["card"], unclassified="reject"))
    assert rejected.rejection.code == "unclassified_field"
    assert rejected.rejection.field == "card"


def test_pseudonymous_id_kept_must_already_be_a_hash():
    """actor_scope_hash must look like sha256:<64 hex>; otherwise reject, or hash at the edge."""
    good = "sha256:" + "ab" * 32
    _, ok = run(
        {"actor_scope_hash": good},
        plan({"actor_scope_hash": PolicySpec("pseudonymous_id", "keep")}),
    )
    assert ok.rejection is None
    spec = {"actor_scope_hash": PolicySpec("pseudonymous_id", "keep")}
    _, rejected = run({"actor_scope_hash": "user_929583699"}, plan(spec))
    assert rejected.rejection.code == "not_pseudonymous"
    out, hashed = run({"actor_scope_hash": "user_929583699"}, plan(spec, unhashed="hash"))
    assert out["actor_scope_hash"] == keyed_hash("user_929583699", key_id=KEY_ID, key=KEY)
    assert hashed.redactions == [("actor_scope_hash", "hash_at_edge")]


def test_scanners_run_on_scan_fields_and_every_map_value():
    """Free text with scan on, and every attribute value, is scanned by every rule."""
    redaction_plan = plan({"note": PolicySpec("internal", "keep", scan=True)})
    out, outcome = run(
        {
            "note": "mail eli.898485@corp.test now",
            "actor": {"display_name": "eli.898485@corp.test"},
            "attributes": {"client_ip": "132.147.15.18", "field_count": "3"},
        },
        redaction_plan,
    )
    assert out["note"] == "mail [email] now"
    assert out["attributes"] == {"client_ip": "[ipv4]", "field_count": "3"}
    assert out["actor"]["display_name"] == "[email]"  # keep without scan: secrets, PII
    assert ("note", "scanner:email") in outcome.redactions
    assert ("attributes", "scanner:ipv4") in outcome.redactions


def test_sensitive_map_keys_are_redacted_whatever_the_value():
    """Attribute keys like password/token/authorization/api_key hide their values."""
    out, outcome = run(
        {
            "attributes": {
                "password": "plain words",
                "Authorization": "abc",
                "api_key": "xyz",
                "scopes": "read",
            }
        },
        plan(),
    )
    assert out["attributes"] == {
        "password": "[redacted]",
        "Authorization": "[redacted]",
        "api_key": "[redacted]",
        "scopes": "read",
    }
    assert outcome.redactions == [("attributes", "sensitive_key")]


def test_redactions_never_record_values_or_map_keys():
    """The record names field paths and rules only."""
    _, outcome = run({"attributes": {"alice@example.com": "alice@example.com"}}, plan())
    assert "alice" not in repr(outcome.redactions)


@pytest.mark.parametrize("key", ["", "k", "test-key", "x" * 64, "y" * 65, "\u00e9" * 40, "z" * 300])
def test_plan_hash_is_hmac_sha256_whatever_the_key_length(key):
    """The precomputed hasher is byte-identical to hmac.new (keys over 64 bytes are hashed)."""
    redaction_plan = redaction_plan_compile(
        compiled().descriptor,
        ALL_KEEP,
        key_id="k9",
        key=key,
        scanner=None,
        sensitive_key=sensitive_key_matcher(),
    )
    for value in ["", "user_42", "\u00fc\u2202" * 50, "x" * 1000]:
        expected = "k9:" + hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
        assert redaction_plan.hash(value) == expected
        assert keyed_hash(value, key_id="k9", key=key) == expected


def _generic_redact(redaction_plan, message):
    """The engine without compiled rules: every rule through _apply on every parent."""
    record = []
    for rule in redaction_plan.rules:
        for parent in _parents(message, rule.path):
            rejection = _apply(redaction_plan, rule, parent, record)
            if rejection is not None:
                return record, rejection
    return record, None


COMPILED_VS_GENERIC_EVENTS = [
    {},
    {
        "user_id": "user_42",
        "card": "4111 1111 1111 1111",
        "note": "mail eli.898485@corp.test from 132.147.15.18, Bearer abcdefghijklmnop1234",
        "client_ip": "2001:db8:abcd:12::1",
        "password": "hunter2",
        "attributes": {"a@b.co": "x", "api_key": "k", "ip": "10.0.0.1", "plain": "v"},
        "actor": {"email": "a@x.test", "display_name": "eve 123-45-6789"},
        "lines": [{"sku": "s1", "buyer_email": "b@x.test"}, {"buyer_email": ""}],
        "actor_scope_hash": "user_929583699",
        "secret_note": "",
        "tags": ["t1", "alice@example.com"],
    },
    {"note": "", "actor": {}, "lines": [{}], "tags": [""], "attributes": {"k": ""}},
    {"actor_scope_hash": "sha256:" + "ab" * 32, "user_id": "u 4111 1111 1111 1111"},
]
COMPILED_VS_GENERIC_PLANS = [
    {},
    {
        "user_id": PolicySpec("pseudonymous_id", "hash"),
        "note": PolicySpec("internal", "keep", scan=True),
        "card": PolicySpec("sensitive", "mask", keep_chars=4),
        "client_ip": PolicySpec("personal", "generalize"),
        "password": PolicySpec("secret", "drop"),
        "actor.email": PolicySpec("personal", "hash"),
        "actor.display_name": PolicySpec("internal", "keep", scan=True),
        "lines.buyer_email": PolicySpec("personal", "hash"),
        "tags": PolicySpec("internal", "keep", scan=True),
        "actor_scope_hash": PolicySpec("pseudonymous_id", "keep"),
    },
    {
        "attributes": PolicySpec("personal", "hash"),
        "note": PolicySpec("internal", "truncate", keep_chars=3),
        "lines.sku": PolicySpec("internal", "keep", scan=True),
        "tags": PolicySpec("personal", "hash"),
    },
    {"secret_note": PolicySpec("secret", "reject_event")},
    {
        "actor_scope_hash": PolicySpec("pseudonymous_id", "keep", scan=True),
        "user_id": PolicySpec("pseudonymous_id", "keep", scan=True),
    },
]


@pytest.mark.parametrize("unhashed", ["reject", "hash"])
@pytest.mark.parametrize("overrides", COMPILED_VS_GENERIC_PLANS)
@pytest.mark.parametrize("event", COMPILED_VS_GENERIC_EVENTS)
def test_compiled_rules_do_what_the_generic_path_does(event, overrides, unhashed):
    """redact_message's per-rule closures change and record exactly what _apply would."""
    redaction_plan = plan(overrides, unhashed=unhashed, missing=["count"])
    fast = json_format.ParseDict(event, compiled().message_class())
    slow = json_format.ParseDict(event, compiled().message_class())
    outcome = redact_message(redaction_plan, fast)
    record, rejection = _generic_redact(redaction_plan, slow)
    assert outcome.redactions == record
    assert outcome.rejection == rejection
    if rejection is None:
        assert fast == slow
