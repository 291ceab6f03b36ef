"""Proof that nothing leaks: planted identifiers and secrets never reach a table, a log or a reply."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.selectors import schema_plans
from governance.services import schema_register
from ingest import pipeline

pytestmark = pytest.mark.django_db

PROBE_SCHEMA = "tests.leak_probe.v1"
PROBE_PROTO = """syntax = "proto3";
package tests.v1;
import "google/protobuf/timestamp.proto";
import "telemetry/v1/options.proto";

message LeakProbe {
  string event_id = 1 [(telemetry.v1.policy) = {classification: CLASSIFICATION_INTERNAL, action: REDACTION_ACTION_KEEP}];
  google.protobuf.Timestamp occurred_at = 2 [(telemetry.v1.policy) = {classification: CLASSIFICATION_INTERNAL, action: REDACTION_ACTION_KEEP}];
  string user_id = 3 [(telemetry.v1.policy) = {classification: CLASSIFICATION_PSEUDONYMOUS_ID, action: REDACTION_ACTION_HASH}];
  string note = 4 [(telemetry.v1.policy) = {classification: CLASSIFICATION_INTERNAL, action: REDACTION_ACTION_KEEP, scan: true}];
  Actor actor = 5;
  map<string, string> attributes = 6 [(telemetry.v1.policy) = {classification: CLASSIFICATION_INTERNAL, action: REDACTION_ACTION_KEEP}];
  string body = 7 [(telemetry.v1.policy) = {classification: CLASSIFICATION_SENSITIVE, action: REDACTION_ACTION_DROP}];
  string actor_scope_hash = 8 [(telemetry.v1.policy) = {classification: CLASSIFICATION_PSEUDONYMOUS_ID, action: REDACTION_ACTION_KEEP}];
  string unclassified_text = 9;
  repeated Step steps = 10;
}
message Actor {
  string email = 1 [(telemetry.v1.policy) = {classification: CLASSIFICATION_PERSONAL, action: REDACTION_ACTION_HASH}];
  string ip = 2 [(telemetry.v1.policy) = {classification: CLASSIFICATION_PERSONAL, action: REDACTION_ACTION_GENERALIZE}];
  string display = 3 [(telemetry.v1.policy) = {classification: CLASSIFICATION_INTERNAL, action: REDACTION_ACTION_KEEP, scan: true}];
}
message Step {
  string detail = 1 [(telemetry.v1.policy) = {classification: CLASSIFICATION_INTERNAL, action: REDACTION_ACTION_KEEP, scan: true}];
}
"""

# Synthetic values in the shapes the control service's sample carries on purpose.
PLANTED = {
    "user": "user_929583699",
    "org": "org_3186027",
    "device": "965eda32-dae4-4550-8201-e2bd73ab4876",
    "email": "eli.898485@corp.test",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiAidXNlcl81NDQzNDEifQ.RjPQO00o6qN0hE1LKSLxf6YOLQHvSpap39LBFTeSE3U",
    "card": "4539 1488 0343 6467",
    "card_plain": "4539148803436467",
    "ipv4": "132.147.15.18",
    "ipv6": "2001:db8:85a3::8a2e:370:7334",
    "url_password": "s3cr3t-pw-77",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "github": "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
    "stripe": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "ssn": "123-45-6789",
    "iban": "GB82WEST12345698765432",
    "password": "hunter2-correct-horse",
    "body": "Dear Eli, the private message body",
}


@pytest.fixture
def probe_schema(platform_config):
    schema_register(
        name=PROBE_SCHEMA,
        proto_files={"probe.proto": PROBE_PROTO},
        message_name="tests.v1.LeakProbe",
        event_class="client_diagnostic",
        actor=None,
    )
    schema_plans.clear()


def probe(number: int, **fields) -> dict:
    return {
        "schema": PROBE_SCHEMA,
        "event": {
            "event_id": f"probe-{number}",
            "occurred_at": "2026-11-24T10:00:00Z",
            **fields,
        },
    }


def planted_batch() -> dict:
    p = PLANTED
    accepted = [
        probe(1, user_id=p["user"], actor={"email": p["email"], "ip": p["ipv4"]}),
        probe(2, note=f"login by {p['email']} from {p['ipv6']} card {p['card']}"),
        probe(
            3,
            attributes={
                "authorization": f"Bearer {p['jwt']}",
                "client_ip": p["ipv4"],
                "email": p["email"],
                "repo": f"https://deploy:{p['url_password']}@git.example.test/x.git",
                "aws": p["aws"],
                "gh": p["github"],
                "stripe": p["stripe"],
                "ssn": p["ssn"],
                "iban": p["iban"],
                "password": p["password"],
                p["email"]: "key-is-personal",
                "device": p["device"],
            },
        ),
        probe(4, body=p["body"], unclassified_text=f"{p['org']} {p['device']}"),
        probe(
            5,
            steps=[{"detail": f"charged {p['card_plain']}"}, {"detail": p["jwt"]}],
            actor={"display": f"{p['email']} ({p['ssn']})"},
        ),
    ]
    rejected = [
        # Kept pseudonym that is not a hash: rejected, the value must not be echoed.
        probe(6, actor_scope_hash=p["email"]),
        # Unknown field carrying a secret; wrong type; bad enum-ish values.
        probe(7, **{"extra_" + "field": p["password"]}),
        probe(8, note={"nested": p["jwt"]}),
        probe(9, user_id=[p["user"]]),
        {"schema": PROBE_SCHEMA, "event": p["stripe"]},
        {"schema": "unknown.schema", "event": {"user_id": p["user"]}},
    ]
    return {"events": accepted + rejected}


def dump_all_tables() -> str:
    """Every row of every table of the database, as text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        tables = [row[0] for row in cursor.fetchall()]
        chunks = []
        for table in tables:
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')  # noqa: S608
            chunks.extend(row[0] for row in cursor.fetchall())
    return "\n".join(chunks)


def planted_hits(text: str) -> list[str]:
    return [name for name, value in PLANTED.items() if value in text]


def test_planted_values_never_reach_tables_logs_or_replies(
    ingest_client, probe_schema, caplog, capsys
):
    """Accepted, rejected and invalid events alike: zero planted values anywhere."""
    caplog.set_level(logging.DEBUG)
    response = ingest_client.post(planted_batch())
    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == 5, body
    assert body["rejected"] == 6
    codes = [r["code"] for r in body["results"][5:]]
    assert codes == [
        "not_pseudonymous",
        "unknown_field",
        "wrong_type",
        "wrong_type",
        "not_an_object",
        "unknown_schema",
    ]
    captured = capsys.readouterr()
    places = {
        "database": dump_all_tables(),
        "logs": caplog.text + captured.out + captured.err,
        "reply": response.content.decode(),
    }
    for place, text in places.items():
        assert planted_hits(text) == [], f"planted values found in {place}"
    # The redaction record names paths and rules, and the stored payload keeps the shape.
    with connection.cursor() as cursor:
        cursor.execute("SELECT redactions FROM ingest_event WHERE event_id = 'probe-3'")
        rules = {tuple(item) for item in json.loads(cursor.fetchone()[0])}
    assert ("attributes", "sensitive_key") in rules
    assert ("attributes", "scanner:email") in rules


# -- property: planted secrets at random positions in random fields --------------------

SECRETS = st.sampled_from(
    [
        PLANTED["email"],
        PLANTED["jwt"],
        PLANTED["card"],
        PLANTED["card_plain"],
        PLANTED["ipv4"],
        PLANTED["ipv6"],
        PLANTED["aws"],
        PLANTED["github"],
        PLANTED["stripe"],
        PLANTED["ssn"],
        PLANTED["iban"],
        "bob.smith+tag@mail.example.org",
        "10.20.30.40",
        "5500 0000 0000 0004",
    ]
)
FILLER = st.text(alphabet=st.characters(whitelist_categories=("L", "N", "Zs")), max_size=30)
PLACES = st.sampled_from(
    [
        "note",
        "attribute",
        "step",
        "display",
        "user_id",
        "email",
        "body",
        "unclassified",
        "attribute_key",
    ]
)


def place_secret(place: str, text: str) -> dict:
    return {
        "note": {"note": text},
        "attribute": {"attributes": {"detail": text}},
        "attribute_key": {"attributes": {text: "1"}},
        "step": {"steps": [{"detail": "ok"}, {"detail": text}]},
        "display": {"actor": {"display": text}},
        "user_id": {"user_id": text},
        "email": {"actor": {"email": text}},
        "body": {"body": text},
        "unclassified": {"unclassified_text": text},
    }[place]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=SECRETS, before=FILLER, after=FILLER, place=PLACES)
def test_planted_secret_anywhere_is_never_stored(probe_schema, secret, before, after, place):
    """Whatever field a secret lands in, at whatever position, the stored form lacks it."""
    text = f"{before} {secret} {after}".strip()
    event = {"event_id": "p", "occurred_at": "2026-11-24T10:00:00Z", **place_secret(place, text)}
    prepared = pipeline.prepare_event(
        pipeline.RawItem(PROBE_SCHEMA, event), pipeline.IngestContext(source="hypothesis")
    )
    if isinstance(prepared, pipeline.Rejection):
        stored = json.dumps([prepared.code, prepared.field, prepared.message])
    else:
        stored = json.dumps(
            [prepared.payload, prepared.redactions, prepared.event_id, prepared.actor_hash]
        )
    assert secret not in stored
    assert secret.replace(" ", "") not in stored.replace(" ", "") or place == "body"
