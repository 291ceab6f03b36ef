"""Audit search API: every filter, newest first, cursor pages, exports, correlation, access."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from ingest import pipeline
from tests.audit.conftest import NOW
from tests.audit_helpers import platform_audit_events
from tests.factories import iso

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(client, platform_config):
    user = get_user_model().objects.create_user("sam", password="pw-123456!")
    user.groups.add(Group.objects.get(name="security analyst"))
    client.force_login(user)
    return client


def names(response) -> list[str]:
    """Event names of the results, leaving out the platform's own audit events."""
    return [
        row["payload"]["event_name"]
        for row in response.json()["results"]
        if row["source"] != "platform"
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, ["auth.login", "auth.logout", "autopilot.updated", "billing.charged"]),
        ({"event_name": "auth."}, ["auth.login", "auth.logout"]),
        ({"event_name": "auth.login"}, ["auth.login"]),
        ({"outcome": "rejected"}, ["auth.logout"]),
        ({"source": "billing"}, ["billing.charged"]),
        ({"request_id": "req_b"}, ["autopilot.updated"]),
        ({"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"}, ["autopilot.updated"]),
        ({"actor": "user_929583699"}, ["auth.login"]),
        ({"actor": "eli.898485@corp.test"}, ["auth.logout"]),
        ({"session": "sess_1"}, ["auth.login"]),
        ({"org": "org_3186027"}, ["auth.login"]),
        ({"device": "965eda32-dae4-4550-8201-e2bd73ab4876"}, ["autopilot.updated"]),
        ({"q": "expired"}, ["auth.logout"]),
        ({"q": "team"}, ["billing.charged"]),
    ],
)
def test_each_filter(analyst, corpus, query, expected):
    """Each filter narrows the last 24 hours, newest first; identifiers are typed raw."""
    response = analyst.get("/api/v1/audit-events", query)
    assert response.status_code == 200
    assert names(response) == expected


def test_time_range_reaches_older_events(analyst, corpus):
    """An explicit range replaces the 24-hour default."""
    after = iso(NOW - timedelta(days=2))
    response = analyst.get(
        "/api/v1/audit-events", {"occurred_after": after, "actor": "user_929583699"}
    )
    assert names(response) == ["auth.login", "auth.login"]


def test_cursor_pagination(analyst, corpus):
    """Pages follow a cursor (no COUNT): two pages of 2 cover the three recent events."""
    query = {"page_size": 2, "event_name": "*"}
    first = analyst.get("/api/v1/audit-events", {**query, "source": "control-service"}).json()
    second = analyst.get(first["next"]).json()
    assert [r["payload"]["event_name"] for r in first["results"] + second["results"]] == [
        "auth.login",
        "auth.logout",
        "autopilot.updated",
    ]
    assert second["next"] is None
    assert "count" not in first


def test_searches_are_recorded_with_hashed_actors(analyst, corpus):
    """Every search is a platform audit event; the actor filter is kept only as a hash."""
    analyst.get("/api/v1/audit-events", {"actor": "eli.898485@corp.test"})
    record = platform_audit_events("platform.audit.searched").latest("occurred_at")
    filters = json.loads(record.payload["attributes"]["filters"])
    assert filters["actor"].startswith("k1:")
    assert "eli.898485" not in json.dumps(record.payload)


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_exports_stream_the_current_filter(analyst, corpus, export_format):
    """Exports are streamed and hold exactly the filtered events; they are recorded."""
    response = analyst.get(f"/api/v1/audit-events/export.{export_format}", {"event_name": "auth."})
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    if export_format == "csv":
        rows = list(csv.DictReader(io.StringIO(body)))
    else:
        rows = [json.loads(line) for line in body.splitlines()]
    assert [row["event_name"] for row in rows] == ["auth.login", "auth.logout"]
    assert platform_audit_events("platform.audit.exported").count() == 1


def test_correlation_joins_events_of_every_class(analyst, corpus):
    """Events of any class sharing the request id appear on one timeline."""
    diagnostic = {
        "envelope": {
            "event_id": "d1",
            "occurred_at": iso(NOW - timedelta(minutes=9)),
            "correlation": {"request_id": "req_b"},
        },
        "name": "slow.render",
    }
    pipeline.ingest_batch(
        [pipeline.RawItem("telemetry.client_diagnostic.v1", diagnostic)],
        pipeline.IngestContext(source="web"),
    )
    audit_row = analyst.get("/api/v1/audit-events", {"request_id": "req_b"}).json()["results"][0]
    timeline = analyst.get(f"/api/v1/audit-events/{audit_row['id']}/correlated").json()["timeline"]
    assert [(e["event_class"], e["request_id"]) for e in timeline] == [
        ("client_diagnostic", "req_b"),
        ("audit_event", "req_b"),
    ]


def test_correlation_lookups_are_audited(analyst, corpus):
    """Opening an event's timeline is recorded: who, which event, how many events it showed."""
    audit_row = analyst.get("/api/v1/audit-events", {"request_id": "req_b"}).json()["results"][0]
    answer = analyst.get(f"/api/v1/audit-events/{audit_row['id']}/correlated").json()
    assert set(answer) == {"event", "timeline"}
    record = platform_audit_events("platform.audit.correlated").get()
    assert record.payload["attributes"]["event"] == str(audit_row["id"])
    assert record.payload["attributes"]["timeline_events"] == str(len(answer["timeline"]))
    assert record.actor_hash.startswith("k1:")


def test_the_openapi_schema_describes_correlation_as_an_object(analyst, corpus):
    """The documented answer of /correlated is the object it returns, not an array."""
    schema = analyst.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/audit-events/{id}/correlated"]["get"]
    content = operation["responses"]["200"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][content["$ref"].rsplit("/", 1)[1]]
    assert component["type"] == "object"
    assert set(component["properties"]) == {"event", "timeline"}


def test_denied_audit_access_is_audited(client, corpus):
    """A signed-in user without the role is refused (403) and the attempt is recorded,
    in the API and in the admin alike."""
    other = get_user_model().objects.create_user("dev", password="pw-123456!", is_staff=True)
    client.force_login(other)
    assert client.get("/api/v1/audit-events", {"actor": "eli@corp.test"}).status_code == 403
    assert client.get("/admin/audit/auditevent/").status_code == 403
    denied = platform_audit_events("platform.audit.denied").order_by("id")
    assert [row.payload["attributes"]["action"] for row in denied] == ["search", "search"]
    assert {row.payload["outcome"] for row in denied} == {"denied"}
    assert "eli@corp.test" not in json.dumps([row.payload for row in denied])
    assert not platform_audit_events("platform.audit.searched").exists()


def test_only_the_security_group_sees_audit_data(client, corpus):
    """Other users get 403; anonymous 401/403; a token works for analysts."""
    assert client.get("/api/v1/audit-events").status_code in (401, 403)
    other = get_user_model().objects.create_user("dev", password="pw-123456!", is_staff=True)
    client.force_login(other)
    assert client.get("/api/v1/audit-events").status_code == 403
    assert client.get("/api/v1/audit-events/export.csv").status_code == 403
    client.logout()
    analyst = get_user_model().objects.create_user("ana", password="pw-123456!")
    analyst.groups.add(Group.objects.get(name="security analyst"))
    token = Token.objects.create(user=analyst)
    response = client.get("/api/v1/audit-events", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_bad_filters_are_400(analyst, corpus):
    """A malformed date is a 400 naming the field, never a 500."""
    response = analyst.get("/api/v1/audit-events", {"occurred_after": "yesterday"})
    assert response.status_code == 400
    assert "occurred_after" in json.dumps(response.json())


@pytest.mark.parametrize(
    "value", ["1291-12-21T07:37:03+16:48", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
)
def test_extreme_dates_are_refused_or_normalised_never_500(analyst, corpus, value):
    """Offsets PostgreSQL refuses and dates out of range give 200 or 400, never 500."""
    response = analyst.get("/api/v1/audit-events", {"occurred_after": value})
    assert response.status_code in (200, 400)


def test_an_unknown_outcome_is_refused_with_its_field(analyst, corpus):
    """Outcome is a choice: a typo is a 400 naming the field, not an empty result."""
    response = analyst.get("/api/v1/audit-events", {"outcome": "rejectd"})
    assert response.status_code == 400
    assert "outcome" in json.dumps(response.json())
