"""The control service's audit records (tests/fixtures/otlp, the AuditEvent shape) sent as
OTLP logs by its 'audit' logger: audit_event rows with ids hashed and secrets scanned away,
found by audit search by raw user id, and part of the hash chain (verify_audit_chain)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection

from governance.otlp import otlp_log_routes
from governance.roles import SECURITY_ANALYST
from tests.ingest.otlp.otlp_helpers import attr, logs_request, post_otlp, stored

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parents[2] / "fixtures/otlp/control_service_audit.jsonl"
AUDIT_SCHEMA = "telemetry.audit_event.v1"
# The semantic-convention names an OTel audit logger would use for the ids it knows.
SEMCONV = {"user_id": "user.id", "session_id": "session.id"}
SECRETS = (
    "eli.898485@corp.test",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    "132.147.15.18",
    "4231007728378322",
    "pw28621040x",
    "sk_live_ef2d127de37b942baad06145e54b0c61",
)


@pytest.fixture(autouse=True)
def _fresh_routes():
    otlp_log_routes.clear()
    yield
    otlp_log_routes.clear()


def audit_records() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def as_log_record(record: dict) -> dict:
    """One AuditEvent as the OTel log record an audit logger emits: the event name, the
    outcome in a key-value body, ids and the string attributes as attributes."""
    when = datetime.fromisoformat(record["occurred_at"].replace("Z", "+00:00"))
    ids = {SEMCONV.get(k, k): record[k] for k in ("user_id", "session_id", "org_id", "device_id")}
    attributes = {"request_id": record["request_id"], **ids, **record["attributes"]}
    return {
        "timeUnixNano": str(int(when.timestamp()) * 1_000_000_000),
        "eventName": record["event_name"],
        "severityText": "INFO",
        "body": {"kvlistValue": {"values": [attr("outcome", record["outcome"])]}},
        "attributes": [attr(key, value) for key, value in attributes.items()],
    }


def event_table_dump() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT e::text FROM ingest_event e WHERE source = 'control-service'")
        return "\n".join(row for (row,) in cursor.fetchall())


def test_audit_records_land_hashed_searchable_and_chained(client, api_key, capsys):
    records = audit_records()
    body = logs_request(*map(as_log_record, records), scope="audit")

    response = post_otlp(client, api_key.secret, "/v1/logs", body)

    assert response.status_code == 200, response.content
    assert response.json() == {}
    rows = stored(AUDIT_SCHEMA)
    mine = [row for row in rows if row["source"] == "control-service"]
    assert sorted(r["payload"]["request_id"] for r in mine) == sorted(
        r["request_id"] for r in records
    )
    dump = event_table_dump()
    for record in records:
        for raw in (record["user_id"], record["session_id"], record["org_id"]):
            assert raw not in dump, raw
    for secret in SECRETS:
        assert secret not in dump, secret
    by_request = {row["payload"]["request_id"]: row for row in mine}
    first = by_request[records[0]["request_id"]]
    assert first["payload"]["outcome"] == records[0]["outcome"]
    assert first["payload"]["attributes"]["autopilot_id"] == "ap_2"
    assert first["actor_hash"] and first["actor_hash"] != records[0]["user_id"]

    analyst = get_user_model().objects.create_user("sam", password="pw-123456!")
    analyst.groups.add(Group.objects.get(name=SECURITY_ANALYST))
    client.force_login(analyst)
    for record in records[:3]:
        query = {"actor": record["user_id"], "occurred_after": "2026-11-01T00:00:00Z"}
        found = client.get("/api/v1/audit-events", query).json()
        assert [r["payload"]["request_id"] for r in found["results"]] == [record["request_id"]]

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM ingest_event WHERE source = 'control-service' "
            "AND chain_seq IS NOT NULL AND chain_link IS NOT NULL AND chain_prev IS NOT NULL"
        )
        assert cursor.fetchone()[0] == len(records)  # every record is a link of its chain
    capsys.readouterr()
    call_command("verify_audit_chain")  # exits 1 (SystemExit) on a broken chain
    assert "Audit chains intact" in capsys.readouterr().out
