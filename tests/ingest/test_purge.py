"""Retention purge: only events older than their class retention go, via a real Celery worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command

from governance.models import EventClass
from ingest import pipeline
from ingest.models import Event
from ingest.services import events_purge_expired
from ingest.tasks import purge_expired_events
from telemetry_platform.celery import app as celery_app
from tests.factories import AUDIT_SCHEMA, iso


def store(*, occurred_at: datetime, schema: str = AUDIT_SCHEMA, name: str = "auth.login") -> None:
    """Store one event through the pipeline, as the API would."""
    if schema == AUDIT_SCHEMA:
        body = {"event_name": name, "outcome": "success", "occurred_at": iso(occurred_at)}
    else:
        body = {"envelope": {"event_id": name, "occurred_at": iso(occurred_at)}, "name": name}
    # Received back then: these events aged in the store (ingest refuses expired events).
    context = pipeline.IngestContext(source="tests", received_at=occurred_at + timedelta(minutes=1))
    result = pipeline.ingest_batch([pipeline.RawItem(schema, body)], context)
    assert result.results[0].status == "accepted", result.as_dict()


def names(event_class: str) -> set[str]:
    events = Event.objects.filter(event_class_id=event_class, source="tests")
    return {e.payload.get("event_name") or e.payload.get("name") for e in events}


@pytest.mark.django_db
def test_purge_removes_only_expired_events(platform_config):
    """Older than retention: purged. Exactly at the cutoff or newer: kept. Per class."""
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    audit_retention = timedelta(days=EventClass.objects.get(name="audit_event").retention_days)
    diag_retention = timedelta(days=EventClass.objects.get(name="client_diagnostic").retention_days)
    store(occurred_at=now - audit_retention - timedelta(seconds=1), name="expired")
    store(occurred_at=now - audit_retention, name="at-cutoff")
    store(occurred_at=now - timedelta(days=1), name="recent")
    diagnostic = "telemetry.client_diagnostic.v1"
    store(occurred_at=now - diag_retention - timedelta(hours=1), schema=diagnostic, name="old-diag")
    # 31 days old: expired for diagnostics (30 days) but far within audit retention (400).
    store(occurred_at=now - timedelta(days=31), name="audit-31d")

    result = events_purge_expired(now=now)

    assert names("audit_event") == {"at-cutoff", "recent", "audit-31d"}
    assert names("client_diagnostic") == set()
    assert result.deleted["client_diagnostic"] == 1
    assert result.deleted["audit_event"] == 1


@pytest.mark.django_db
def test_purge_deletes_in_bounded_batches(platform_config, settings):
    """With a batch size smaller than the backlog, every expired event is still removed."""
    settings.TELEMETRY_PURGE_BATCH_SIZE = 2
    now = datetime.now(UTC)
    for number in range(5):
        store(occurred_at=now - timedelta(days=500, minutes=number), name=f"old-{number}")
    store(occurred_at=now - timedelta(days=2), name="kept")
    result = events_purge_expired(event_class="audit_event", now=now)
    assert result.deleted == {"audit_event": 5}
    assert names("audit_event") == {"kept"}


@pytest.mark.django_db
def test_purge_is_recorded_as_a_platform_audit_event(platform_config):
    """Each purge run writes a platform audit event saying what it removed."""
    now = datetime.now(UTC)
    store(occurred_at=now - timedelta(days=600), name="ancient")
    events_purge_expired(now=now)
    record = Event.objects.filter(
        source="platform",
        payload__event_name="platform.retention.purged",
        payload__attributes__event_class="audit_event",
    ).get()
    assert record.payload["attributes"]["rows_deleted"] == "1"
    assert record.payload["attributes"]["event_class"] == "audit_event"


@pytest.mark.django_db
def test_purge_command_runs_in_process(platform_config, capsys):
    """`manage.py purge_expired` purges on demand and reports per class."""
    store(occurred_at=datetime.now(UTC) - timedelta(days=401), name="old")
    call_command("purge_expired")
    out = capsys.readouterr().out
    assert "audit_event: deleted 1 events" in out
    assert names("audit_event") == set()


@pytest.mark.django_db(transaction=True)
def test_purge_task_runs_on_a_real_worker_through_redis(platform_config, empty_broker):
    """The beat task executes on a Celery worker consuming Redis and removes expired events."""
    now = datetime.now(UTC)
    store(occurred_at=now - timedelta(days=450), name="expired")
    store(occurred_at=now - timedelta(days=3), name="fresh")
    with start_worker(
        celery_app,
        pool="solo",
        perform_ping_check=False,
        queues=["maintenance"],
        shutdown_timeout=10,
    ):
        deleted = purge_expired_events.delay("audit_event").get(timeout=60)
    assert deleted == {"audit_event": 1}
    assert names("audit_event") == {"fresh"}
