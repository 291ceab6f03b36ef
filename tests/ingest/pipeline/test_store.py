"""The pipeline's store step: COPY into a per-connection staging table, then one INSERT."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from governance.selectors import schema_plans
from ingest import pipeline
from ingest.models import Event
from tests.factories import (
    CLIENT_TELEMETRY_SCHEMA,
    client_telemetry_events,
    client_telemetry_schema_register,
)


def _prepared(count: int, context: pipeline.IngestContext) -> list[pipeline.PreparedEvent]:
    schema_plans.refresh(force=True)
    events = []
    for event in client_telemetry_events(count):
        prepared = pipeline.prepare_event(pipeline.RawItem(CLIENT_TELEMETRY_SCHEMA, event), context)
        assert isinstance(prepared, pipeline.PreparedEvent), prepared
        events.append(prepared)
    return events


@pytest.fixture(params=["values", "staging"])
def store_path(request, monkeypatch):
    """Both ways rows travel: in the INSERT's VALUES (small batches) or COPY + staging."""
    if request.param == "staging":
        monkeypatch.setattr(pipeline.store, "VALUES_MAX_ROWS", 0)
    return request.param


@pytest.mark.django_db
def test_each_insert_reports_only_its_own_new_rows(platform_config, store_path):
    """Several inserts in one transaction (the audit path makes one per chain): each
    answers for its own rows only, and a row already stored is a duplicate."""
    client_telemetry_schema_register()
    context = pipeline.IngestContext(source="web", request_id="req-1")
    a, b, c = _prepared(3, context)
    with transaction.atomic():
        first = pipeline.insert_events([a, b], context)
        second = pipeline.insert_events([b, c], context)
        third = pipeline.insert_events([a], context)
    assert first == {a.key, b.key}
    assert second == {c.key}
    assert third == set()
    stored = Event.objects.filter(source="web")
    assert stored.count() == 3
    row = stored.get(event_id=a.event_id)
    assert row.payload == a.payload
    assert row.redactions == [list(pair) for pair in a.redactions]
    assert row.ingest_request_id == "req-1"
    assert row.received_at == context.received_at
    assert row.chain_seq is None and row.chain_prev is None


@pytest.mark.django_db
def test_statement_timeout_is_set_with_the_insert(platform_config, store_path):
    """The transaction's statement timeout travels with the INSERT and holds after it."""
    client_telemetry_schema_register()
    context = pipeline.IngestContext(source="web")
    events = _prepared(2, context)
    with transaction.atomic():
        inserted = pipeline.insert_events(events, context, statement_timeout_ms=1234)
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "1234ms"
    assert inserted == {event.key for event in events}


@pytest.mark.django_db(transaction=True)
def test_staging_table_survives_a_rolled_back_first_use(platform_config, monkeypatch):
    """The staging table created in a transaction that rolls back is gone; the next batch
    creates it again, and once a creating transaction commits it is reused."""
    client_telemetry_schema_register()
    monkeypatch.setattr(pipeline.store, "VALUES_MAX_ROWS", 0)
    context = pipeline.IngestContext(source="web")
    first, second = _prepared(2, context)
    connection.ensure_connection()
    pipeline.store._staged_connections.discard(connection.connection)
    with pytest.raises(RuntimeError), transaction.atomic():
        assert pipeline.insert_events([first], context) == {first.key}
        raise RuntimeError("roll back")
    assert connection.connection not in pipeline.store._staged_connections
    with transaction.atomic():
        assert pipeline.insert_events([first, second], context) == {first.key, second.key}
    assert connection.connection in pipeline.store._staged_connections
    with transaction.atomic():
        assert pipeline.insert_events([second], context) == set()
    assert Event.objects.filter(source="web").count() == 2
