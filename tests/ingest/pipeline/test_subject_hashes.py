"""The hashes of the people an event names: computed by prepare, stored in an indexed column."""

from __future__ import annotations

import pytest
from django.db import connection

from governance.hashing import keyed_hash
from governance.selectors import schema_plans
from ingest import pipeline
from ingest.models import Event
from ingest.pipeline.types import PreparedEvent
from telemetry_platform.conf import telemetry_settings
from tests.factories import (
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
    client_telemetry_schema_register,
)
from tests.ingest.pipeline.test_prepare import event, run


def test_prepare_lists_the_hashes_of_hashed_fields_and_the_actor():
    """A hashed e-mail that is also the actor appears once, as its keyed hash; kept
    fields and raw values do not appear."""
    prepared = run(event())
    assert isinstance(prepared, PreparedEvent)
    expected = keyed_hash("ada@example.test", key_id="k1", key="test-key")
    assert prepared.subject_hashes == (expected,)
    assert prepared.actor_hash == expected
    assert not any("ada@" in value for value in prepared.subject_hashes)


def test_an_event_naming_nobody_has_no_subject_hashes():
    """No e-mail, no actor: the column stays empty (NULL in the store)."""
    prepared = run(event(user_email=""))
    assert isinstance(prepared, PreparedEvent)
    assert prepared.subject_hashes == ()


@pytest.fixture(params=["values", "staging"])
def store_path(request, monkeypatch):
    """Both ways rows travel: in the INSERT's VALUES (small batches) or COPY + staging."""
    if request.param == "staging":
        monkeypatch.setattr(pipeline.store, "VALUES_MAX_ROWS", 0)
    return request.param


@pytest.mark.django_db
def test_stored_rows_carry_nested_pseudonymous_hashes_and_are_found_by_them(
    platform_config, store_path
):
    """A kept pseudonymous id (actor scope, nested) and a hashed session id (nested) are
    stored in subject_hashes; an overlap query on the column finds exactly that event."""
    client_telemetry_schema_register()
    schema_plans.refresh(force=True)
    bodies = client_telemetry_events(3)
    bodies[1]["actor_scope_hash"] = "sha256:" + "ab" * 32
    result = pipeline.ingest_batch(
        [pipeline.RawItem(CLIENT_TELEMETRY_SCHEMA, body) for body in bodies],
        pipeline.IngestContext(source="web"),
    )
    assert result.totals()["accepted"] == 3
    key_id = telemetry_settings.HASH_KEY_ID
    session_hash = keyed_hash("sess_1", key_id=key_id, key=telemetry_settings.HASH_KEYS[key_id])
    row = Event.objects.get(event_id=bodies[1]["event_id"])
    assert set(row.subject_hashes) == {"sha256:" + "ab" * 32, session_hash}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id FROM ingest_event WHERE subject_hashes && %s::text[]",
            [["sha256:" + "ab" * 32]],
        )
        assert [found for (found,) in cursor.fetchall()] == [bodies[1]["event_id"]]
