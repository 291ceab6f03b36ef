"""The purge's DDL never queues in front of ingest: lock_timeout, retry, give-up, no routing."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from ingest import pipeline
from ingest.models import Event, PurgeRun
from ingest.retention import _attached_day_partitions, day_partition_name, partitions_maintain
from ingest.services import events_purge_expired
from tests.ingest.test_retention_holds import DIAGNOSTIC, in_thread, store_old, surviving

pytestmark = pytest.mark.django_db(transaction=True)

CLASS_TABLE = "ingest_event_client_diagnostic"


def old_day_start() -> datetime:
    """01:00 UTC forty days ago: a whole day past the 30-day diagnostic retention."""
    return datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=40)


def ingest_one_now(name: str) -> float:
    """Store one fresh diagnostic event as the API would; return how long it took (s)."""
    body = {"envelope": {"event_id": name, "occurred_at": datetime.now(UTC).isoformat()}}
    body["name"] = name
    started = time.perf_counter()
    result = pipeline.ingest_batch(
        [pipeline.RawItem(DIAGNOSTIC, body)], pipeline.IngestContext(source="live")
    )
    elapsed = time.perf_counter() - started
    assert result.results[0].status == "accepted", result.as_dict()
    return elapsed


def in_flight_insert():
    """A connection holding what an insert of the class holds until it commits."""
    locker = connections.create_connection("default")
    locker.set_autocommit(False)
    with locker.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {CLASS_TABLE} IN ROW EXCLUSIVE MODE")
    return locker


def test_detach_waiting_on_an_insert_gives_way_and_retries(platform_config, settings, caplog):
    """While an insert's transaction is open, the purge's DETACH gives up after
    lock_timeout and asks again, so other inserts of the class are not queued behind it
    (before: they waited until that insert committed); once it commits, the day is dropped."""
    settings.TELEMETRY_PURGE_LOCK_TIMEOUT_MS = 30
    start = old_day_start()
    store_old(30, start=start, schema=DIAGNOSTIC)
    partitions_maintain(event_class="client_diagnostic", days_ahead=1)
    ingest_one_now("warm")  # plans cached: the timings below are ingest alone
    day_table = day_partition_name("client_diagnostic", start.date())
    caplog.set_level(logging.INFO, logger="ingest.retention")
    locker = in_flight_insert()
    try:
        purge, errors = in_thread(
            events_purge_expired, event_class="client_diagnostic", triggered_by="test-ddl"
        )
        timings = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            timings.append(ingest_one_now(f"live.{len(timings)}"))
            time.sleep(0.02)
        assert any("waited past lock_timeout" in r.getMessage() for r in caplog.records)
        assert purge.is_alive()  # still retrying: the insert has not committed
    finally:
        locker.rollback()
        locker.close()
    purge.join(timeout=30)
    assert errors == []
    assert len(timings) >= 20
    assert max(timings) < 0.5, sorted(timings)[-5:]
    run = PurgeRun.objects.get(triggered_by="test-ddl")
    assert run.status == PurgeRun.Status.SUCCEEDED
    assert run.partitions_dropped == [day_table]
    assert surviving("client_diagnostic") == set()
    assert Event.objects.filter(source="live").count() == len(timings) + 1


def test_detach_refused_every_time_falls_back_to_batched_delete(platform_config, settings):
    """After PURGE_DDL_ATTEMPTS refusals the day stays attached and its expired rows are
    deleted in batches (DELETE takes the same lock as inserts, so the insert holding its
    lock the whole time does not stop it): the purge still removes what expired."""
    settings.TELEMETRY_PURGE_LOCK_TIMEOUT_MS = 20
    settings.TELEMETRY_PURGE_DDL_ATTEMPTS = 2
    start = old_day_start()
    store_old(30, start=start, schema=DIAGNOSTIC)
    partitions_maintain(event_class="client_diagnostic", days_ahead=0)
    day_table = day_partition_name("client_diagnostic", start.date())
    locker = in_flight_insert()
    try:
        events_purge_expired(event_class="client_diagnostic", triggered_by="test-ddl")
    finally:
        locker.rollback()
        locker.close()
    run = PurgeRun.objects.get(triggered_by="test-ddl")
    assert run.status == PurgeRun.Status.SUCCEEDED
    assert (run.partitions_dropped, run.rows_deleted) == ([], 30)
    assert day_table in _attached_day_partitions("client_diagnostic").values()
    assert surviving("client_diagnostic") == set()


def test_errors_other_than_lock_timeout_are_not_retried(platform_config, settings, monkeypatch):
    """Only lock_not_available is retried: any other failure of the DETACH fails the run."""
    from ingest import retention

    settings.TELEMETRY_PURGE_DDL_ATTEMPTS = 50
    calls = []

    def broken(rules, name):
        calls.append(name)
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE no_such_table DETACH PARTITION no_such_partition")

    monkeypatch.setattr(retention, "_detach_partition_unless_held", broken)
    store_old(5, start=old_day_start(), schema=DIAGNOSTIC)
    partitions_maintain(event_class="client_diagnostic", days_ahead=0)
    with pytest.raises(Exception, match="no_such_table"):
        events_purge_expired(event_class="client_diagnostic", triggered_by="test-ddl")
    assert len(calls) == 1
    assert PurgeRun.objects.get(triggered_by="test-ddl").status == PurgeRun.Status.FAILED


def test_no_insert_routes_to_a_dropped_day(platform_config):
    """A day is dropped only when wholly older than every cutoff of its class, and ingest
    refuses events older than the retention: an event of a dropped day is rejected
    (expired), so it neither fails on a missing partition nor lands in the default one."""
    start = old_day_start()
    store_old(5, start=start, schema=DIAGNOSTIC)
    partitions_maintain(event_class="client_diagnostic", days_ahead=0)
    events_purge_expired(event_class="client_diagnostic", triggered_by="test-ddl")
    assert PurgeRun.objects.get(triggered_by="test-ddl").partitions_dropped == [
        day_partition_name("client_diagnostic", start.date())
    ]
    late = {"envelope": {"event_id": "late", "occurred_at": start.isoformat()}, "name": "late"}
    result = pipeline.ingest_batch(
        [pipeline.RawItem(DIAGNOSTIC, late)], pipeline.IngestContext(source="live")
    )
    assert result.results[0].status == "rejected"
    assert result.results[0].code == "expired"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {CLASS_TABLE}_default")  # noqa: S608
        assert cursor.fetchone()[0] == 0
