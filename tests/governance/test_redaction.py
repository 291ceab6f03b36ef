"""Keyed hashing and the schema-annotated redaction applied at ingest, before storage."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from governance.redaction import keyed_hash, keyed_hash_candidates
from ingest.models import Event
from tests.factories import audit_event, batch


def test_keyed_hash_is_prefixed_with_its_key_id_and_depends_on_the_key():
    """The same value under two keys differs; the stored form names the key that made it."""
    first = keyed_hash("user_929583699", key_id="k1", key="secret-one")
    second = keyed_hash("user_929583699", key_id="k2", key="secret-two")
    assert first.startswith("k1:") and len(first) == 3 + 64
    assert second.startswith("k2:") and first[3:] != second[3:]
    assert keyed_hash("user_929583699", key_id="k1", key="secret-one") == first


def test_search_candidates_cover_every_key():
    """After a rotation, a raw identifier still matches rows hashed under the old key."""
    keys = {"k1": "old", "k2": "new"}
    old_row = keyed_hash("alice@example.com", key_id="k1", key="old")
    assert old_row in keyed_hash_candidates("alice@example.com", keys=keys)


@pytest.mark.django_db
def test_actor_identifiers_are_stored_only_as_keyed_hashes(ingest_client, settings):
    """user_id, org_id, device_id and session_id never reach the database in the clear."""
    raw = {
        "user_id": "user_929583699",
        "org_id": "org_3186027",
        "device_id": "965eda32-dae4-4550-8201-e2bd73ab4876",
        "session_id": "sess_53171691",
    }
    response = ingest_client.post(batch(audit_event(**raw)))
    assert response.json()["accepted"] == 1
    event = Event.objects.get(source="control-service")
    key = settings.TELEMETRY_HASH_KEYS[settings.TELEMETRY_HASH_KEY_ID]
    for name, value in raw.items():
        assert event.payload[name] == keyed_hash(
            value, key_id=settings.TELEMETRY_HASH_KEY_ID, key=key
        )
    assert event.actor_hash == event.payload["user_id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM ingest_event e")
        dump = json.dumps([row[0] for row in cursor.fetchall()])
    for value in raw.values():
        assert value not in dump
    assert all(value not in response.content.decode() for value in raw.values())


SECRET_TOKEN = "ghp_" + "x1" * 18  # a GitHub token's shape


@pytest.mark.django_db
def test_a_kept_envelope_event_id_is_scanned_before_storage(ingest_client):
    """An envelope event_id (internal/keep, no scan) holding an e-mail or a token is stored
    redacted, in the row's event id and its payload; a UUID event id stays as sent."""
    from datetime import UTC, datetime

    uuid = "0b8c7d2e-4f51-4a7b-9c3d-2e1f0a9b8c7d"
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    events = [
        {"envelope": {"event_id": event_id, "occurred_at": now}, "name": "boot"}
        for event_id in ("alice@example.com", SECRET_TOKEN, uuid)
    ]
    response = ingest_client.post(batch(*events, schema="telemetry.client_diagnostic.v1"))
    assert response.json()["accepted"] == 3, response.content
    stored = Event.objects.filter(event_class_id="client_diagnostic")
    assert {event.event_id for event in stored} == {"[email]", "[api_key]", uuid}
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM ingest_event e")
        dump = json.dumps([row[0] for row in cursor.fetchall()])
    assert "alice@example.com" not in dump and SECRET_TOKEN not in dump
    assert "alice@example.com" not in response.content.decode()
    assert SECRET_TOKEN not in response.content.decode()


@pytest.mark.django_db
def test_the_artifact_source_parameter_is_scanned_before_storage(client, api_key):
    """?source= of a sign-off artifact lands in the kept envelope source: an e-mail there
    is stored as [email], never raw."""
    from tests.factories import PERF_SIGNOFF_SAMPLE_COUNT, perf_signoff_artifact

    response = client.post(
        "/api/v1/artifacts/perf-signoff?source=alice%40example.com",
        data=json.dumps(perf_signoff_artifact()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key.secret}",
    )
    assert response.json()["accepted"] == PERF_SIGNOFF_SAMPLE_COUNT, response.content
    stored = Event.objects.filter(event_class_id="performance_budget_sample")
    assert {event.source for event in stored} == {"[email]"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM ingest_event e")
        assert "alice@example.com" not in json.dumps([row[0] for row in cursor.fetchall()])
