"""Ingest validates every event against its registered schema: JSON and binary, lifecycle."""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from google.protobuf import json_format

from governance.choices import RevisionStatus
from governance.platform_protos import event_batch_class
from governance.selectors import schema_plans
from governance.services import schema_revision_status_change
from ingest import pipeline
from ingest.models import Event
from tests.factories import (
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
    client_telemetry_schema_register,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_schema(platform_config):
    return client_telemetry_schema_register()


def protobuf_batch(events: list[dict], schema: str = CLIENT_TELEMETRY_SCHEMA) -> bytes:
    message_class = schema_plans_message_class()
    batch = event_batch_class()()
    for event in events:
        item = batch.events.add()
        item.schema = schema
        item.event = json_format.ParseDict(event, message_class()).SerializeToString()
    return batch.SerializeToString()


def schema_plans_message_class():
    schema_plans.refresh(force=True)
    return schema_plans.get(CLIENT_TELEMETRY_SCHEMA).compiled.message_class


def post_protobuf(ingest_client, body: bytes, query: str = ""):
    return ingest_client.post(None, raw=body, query=query, content_type="application/x-protobuf")


def stored_payloads() -> dict[str, dict]:
    return {
        e.event_id: e.payload
        for e in Event.objects.filter(event_class_id="client_diagnostic", source="control-service")
    }


def test_client_telemetry_fixture_ingests_as_bare_bodies(ingest_client, client_schema):
    """The contract's fixture posts unchanged with ?schema=...; envelope facts come from roles."""
    events = client_telemetry_events(3)
    response = ingest_client.post({"events": events}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")
    assert response.json()["accepted"] == 3
    stored = Event.objects.get(event_id="evt_reconnect_0000")
    assert stored.event_class_id == "client_diagnostic"
    assert stored.schema_revision_id == client_schema.pk
    assert int(stored.occurred_at.timestamp() * 1000) == events[0]["occurred_at_unix_ms"]
    assert stored.actor_hash == events[0]["actor_scope_hash"]
    assert stored.payload["reconnect"]["reason_code"] == "network_path_changed"
    assert stored.payload["surface"] == "CLIENT_SURFACE_IOS"


def test_json_and_binary_give_identical_stored_payloads(ingest_client, client_schema):
    """The same events through JSON and through protobuf are stored byte-for-byte alike."""
    events = client_telemetry_events(4)
    json_result = ingest_client.post({"events": events}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")
    assert json_result.json()["accepted"] == 4
    from_json = stored_payloads()
    Event.objects.filter(source="control-service").delete()
    binary_result = post_protobuf(ingest_client, protobuf_batch(events))
    assert binary_result.status_code == 200, binary_result.content
    assert binary_result.json()["accepted"] == 4
    assert stored_payloads() == from_json


def test_binary_items_without_schema_take_the_query_schema(ingest_client, client_schema):
    """In a protobuf batch, ?schema= names the schema of items that carry none."""
    body = protobuf_batch(client_telemetry_events(2), schema="")
    response = post_protobuf(ingest_client, body, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")
    assert response.json()["accepted"] == 2


def test_malformed_protobuf_batch_is_400(ingest_client, client_schema):
    """Bytes that are not an EventBatch: the whole request is refused."""
    response = post_protobuf(ingest_client, b"\xff\xff\xff\xff")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_protobuf"


def test_binary_event_errors_are_per_event(ingest_client, client_schema):
    """Undecodable event bytes and unknown field numbers reject that event only."""
    batch = event_batch_class()()
    good = protobuf_batch(client_telemetry_events(1))
    batch.MergeFromString(good)
    broken = batch.events.add()
    broken.schema = CLIENT_TELEMETRY_SCHEMA
    broken.event = b"\x12\xff"  # field 2 (event_id) claims 255 bytes that are not there
    unknown = batch.events.add()
    unknown.schema = CLIENT_TELEMETRY_SCHEMA
    unknown.event = b"\x1a\x03abc" + b"\xf8\x06\x01"  # field 111: not in the schema
    results = post_protobuf(ingest_client, batch.SerializeToString()).json()["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "rejected"]
    assert results[1]["code"] == "invalid_event"
    assert results[2]["code"] == "unknown_field"


def rejection(ingest_client, event: dict) -> tuple[str, str]:
    response = ingest_client.post({"events": [event]}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")
    result = response.json()["results"][0]
    assert result["status"] == "rejected", result
    assert "alice@example.com" not in response.content.decode()
    return result["code"], result["field"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.update(bogus="alice@example.com"), ("unknown_field", "bogus")),
        (lambda e: e["reconnect"].update(extra=1), ("unknown_field", "reconnect.extra")),
        (lambda e: e.update(app_version={"x": "alice@example.com"}), ("wrong_type", "app_version")),
        (
            lambda e: e["reconnect"].update(attempt="alice@example.com"),
            ("wrong_type", "reconnect.attempt"),
        ),
        (lambda e: e.update(surface="alice@example.com"), ("unknown_enum_value", "surface")),
        (lambda e: e["reconnect"].update(attempt=-1), ("out_of_range", "reconnect.attempt")),
        (lambda e: e.update(replay={"status": "live"}), ("oneof_conflict", "replay")),
        (lambda e: e.pop("occurred_at_unix_ms"), ("missing_field", "occurred_at_unix_ms")),
        (lambda e: e.update(event_id=""), ("missing_field", "event_id")),
        (lambda e: e.update(event_id="x" * 201), ("too_long", "event_id")),
    ],
)
def test_every_rejection_reason_has_code_and_path(ingest_client, client_schema, mutate, expected):
    """Each way an event can be invalid is named with its code and field path, value not echoed."""
    event = client_telemetry_events(1)[0]
    mutate(event)
    assert rejection(ingest_client, event) == expected


def test_non_object_event_is_rejected(ingest_client, client_schema):
    """A bare item that is not a JSON object is rejected per event."""
    response = ingest_client.post({"events": [42]}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}")
    assert response.json()["results"][0]["code"] == "not_an_object"


def test_lifecycle_states_at_ingest(ingest_client, client_schema, settings):
    """Draft and retired revisions refuse events; deprecated accepts with a warning."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0
    events = iter(client_telemetry_events(10))

    def post_one():
        body = {"events": [next(events)]}
        return ingest_client.post(body, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}").json()

    assert post_one()["results"][0]["status"] == "accepted"
    schema_revision_status_change(
        revision=client_schema, status=RevisionStatus.DEPRECATED, actor=None
    )
    deprecated = post_one()["results"][0]
    assert deprecated["status"] == "accepted"
    assert deprecated["warnings"] == ["schema revision is deprecated"]
    schema_revision_status_change(revision=client_schema, status=RevisionStatus.RETIRED, actor=None)
    assert post_one()["results"][0]["code"] == "schema_retired"


def test_draft_revision_refuses_until_activated(ingest_client, platform_config, settings):
    """A schema whose only revision is a draft refuses events with schema_draft."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0
    revision = client_telemetry_schema_register(status=RevisionStatus.DRAFT)
    body = {"events": client_telemetry_events(1)}
    query = f"?schema={CLIENT_TELEMETRY_SCHEMA}"
    assert ingest_client.post(body, query=query).json()["results"][0]["code"] == "schema_draft"
    schema_revision_status_change(revision=revision, status=RevisionStatus.ACTIVE, actor=None)
    assert ingest_client.post(body, query=query).json()["accepted"] == 1


def test_pinned_revision(ingest_client, client_schema):
    """NAME@VERSION pins a revision; an unknown version is rejected."""
    events = client_telemetry_events(2)
    body = {
        "events": [
            {"schema": f"{CLIENT_TELEMETRY_SCHEMA}@1", "event": events[0]},
            {"schema": f"{CLIENT_TELEMETRY_SCHEMA}@7", "event": events[1]},
        ]
    }
    results = ingest_client.post(body).json()["results"]
    assert results[0]["status"] == "accepted"
    assert results[1]["code"] == "unknown_schema_version"


def test_no_query_per_event(ingest_client, client_schema):
    """Schema lookup is cached: a 200-event batch costs the same queries as a 10-event one,
    and a one-event batch the same as an 8-event one (up to 8 rows the events travel in
    the INSERT itself, beyond through the staging table: see pipeline.store.VALUES_MAX_ROWS)."""
    ingest_client.post(
        {"events": client_telemetry_events(1)}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}"
    )

    def queries_for(count: int, start_ms: int) -> int:
        events = client_telemetry_events(count, start_ms=start_ms)
        with CaptureQueriesContext(connection) as captured:
            response = ingest_client.post(
                {"events": events}, query=f"?schema={CLIENT_TELEMETRY_SCHEMA}"
            )
        assert response.json()["accepted"] == count
        return len(captured)

    now_ms = int(time.time() * 1000)
    assert pipeline.store.VALUES_MAX_ROWS == 8
    assert queries_for(200, now_ms - 3_600_000) == queries_for(10, now_ms - 7_200_000)
    assert queries_for(1, now_ms - 8_000_000) == queries_for(8, now_ms - 9_000_000)


def metric_value(client, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    text = client.get("/metrics").content.decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{name}{{") and _labels_match(line, labels)
    )


def _labels_match(line: str, labels: dict[str, str]) -> bool:
    return all(f'{key}="{value}"' in line for key, value in labels.items())


def test_deprecated_and_outcome_counters(ingest_client, client_schema, client, settings):
    """Accepted, rejected and deprecated-schema events are counted on /metrics."""
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0
    query = f"?schema={CLIENT_TELEMETRY_SCHEMA}"
    labels = {"schema": CLIENT_TELEMETRY_SCHEMA, "version": "1"}
    before = metric_value(client, "telemetry_ingest_deprecated_schema_events_total", **labels)
    accepted_before = metric_value(
        client, "telemetry_ingest_events_total", schema=CLIENT_TELEMETRY_SCHEMA, outcome="accepted"
    )
    schema_revision_status_change(
        revision=client_schema, status=RevisionStatus.DEPRECATED, actor=None
    )
    events = client_telemetry_events(3)
    events[2]["bogus"] = 1
    ingest_client.post({"events": events}, query=query)
    after = metric_value(client, "telemetry_ingest_deprecated_schema_events_total", **labels)
    assert after - before == 2
    accepted_after = metric_value(
        client, "telemetry_ingest_events_total", schema=CLIENT_TELEMETRY_SCHEMA, outcome="accepted"
    )
    assert accepted_after - accepted_before == 2
    assert (
        metric_value(
            client,
            "telemetry_ingest_events_total",
            schema=CLIENT_TELEMETRY_SCHEMA,
            outcome="rejected",
            code="unknown_field",
        )
        >= 1
    )


def test_unknown_schema_names_do_not_mint_series(ingest_client, platform_config, client):
    """Unregistered schema names are counted under 'unknown', never as label values."""
    ingest_client.post({"events": [{"schema": "attacker.chosen.name", "event": {}}]})
    text = client.get("/metrics").content.decode()
    assert "attacker.chosen.name" not in text
    assert 'schema="unknown"' in text


def test_metrics_token(client, settings, platform_config):
    """With METRICS_BEARER_TOKEN set, /metrics needs it."""
    settings.METRICS_BEARER_TOKEN = "scrape-token"
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token")
    assert ok.status_code == 200
