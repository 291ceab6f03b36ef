"""Legal holds placed while a purge runs: between batches, mid-DELETE, mid-partition drop."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from governance.models import EventClass
from governance.services import legal_hold_create
from ingest import pipeline
from ingest.models import Event, PurgeRun
from ingest.retention import day_partition_name, partitions_maintain
from ingest.services import events_purge_expired
from tests.factories import AUDIT_SCHEMA, iso

pytestmark = pytest.mark.django_db(transaction=True)

DIAGNOSTIC = "telemetry.client_diagnostic.v1"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=450)


def store_old(count: int, *, start: datetime = START, schema: str = AUDIT_SCHEMA) -> None:
    """Store ``count`` events one second apart from ``start``, received back then."""
    items = []
    for n in range(count):
        at = iso(start + timedelta(seconds=n))
        if schema == AUDIT_SCHEMA:
            body = {"event_name": f"old.{n}", "outcome": "success", "occurred_at": at}
        else:
            body = {"envelope": {"event_id": f"old.{n}", "occurred_at": at}, "name": f"old.{n}"}
        items.append(pipeline.RawItem(schema, body))
    context = pipeline.IngestContext(source="aged", received_at=start + timedelta(days=1))
    for first in range(0, count, 500):
        result = pipeline.ingest_batch(items[first : first + 500], context)
        assert result.totals()["accepted"] == len(items[first : first + 500])


def surviving(event_class: str = "audit_event") -> set[int]:
    """The numbers n of the ``old.n`` events still stored."""
    events = Event.objects.filter(event_class_id=event_class, source="aged")
    return {
        int((e.payload.get("event_name") or e.payload.get("name")).split(".")[1]) for e in events
    }


def place_hold(owner, *, numbers: range, start: datetime = START, **criteria) -> None:
    """Place a hold through the service an approved change calls, covering ``numbers``."""
    legal_hold_create(
        reason="litigation 42",
        owner=owner,
        occurred_from=start + timedelta(seconds=numbers.start),
        occurred_to=start + timedelta(seconds=numbers.stop),
        **criteria,
    )


def in_thread(target, *args, **kwargs) -> tuple[threading.Thread, list]:
    """Run ``target`` on its own thread (so its own database connection); collect errors."""
    errors: list = []

    def run():
        try:
            target(*args, **kwargs)
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def wait_for_blocked(statement_prefix: str) -> None:
    """Wait until a backend of this database is waiting on a lock in such a statement."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                [statement_prefix + "%"],
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)
    raise AssertionError(f"no backend blocked in {statement_prefix!r}")


@pytest.fixture
def owner(platform_config):
    return get_user_model().objects.create_user("counsel", password="pw-123456!")


def test_a_hold_placed_between_batches_protects_its_rows_from_the_next_batch_on(
    owner, settings
):
    """A hold placed while a purge deletes in batches keeps every row it covers; the
    uncovered expired rows still go."""
    settings.TELEMETRY_PURGE_BATCH_SIZE = 20
    settings.TELEMETRY_PURGE_BATCH_PAUSE_SECONDS = 0.05
    store_old(300)
    covered = range(200, 300)
    at_placement: list[set[int]] = []

    def place_after_first_batch():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = PurgeRun.objects.filter(triggered_by="test-holds").first()
            if run and run.rows_deleted >= 20:
                break
            time.sleep(0.005)
        place_hold(owner, numbers=covered)
        at_placement.append(surviving() & set(covered))

    thread, errors = in_thread(place_after_first_batch)
    events_purge_expired(event_class="audit_event", triggered_by="test-holds")
    thread.join(timeout=30)
    assert errors == []
    # The hold landed mid-purge: rows it covers were still there when it was placed.
    assert at_placement and at_placement[0]
    left = surviving()
    assert left & set(covered) == at_placement[0]
    assert left - set(covered) == set()
    run = PurgeRun.objects.get(triggered_by="test-holds")
    assert run.status == PurgeRun.Status.SUCCEEDED
    assert run.rows_kept_by_holds == len(at_placement[0])


def test_a_hold_committed_while_a_delete_batch_runs_protects_that_batch_too(owner, settings):
    """A hold that commits while a DELETE batch is in flight (the batch read the holds
    before it) still keeps every row it covers: the batch is rolled back and redone."""
    settings.TELEMETRY_PURGE_BATCH_SIZE = 1000
    store_old(200)
    covered = range(100, 200)
    # Another session locks one uncovered expired row, so the one DELETE batch waits mid-way.
    locker = connections.create_connection("default")
    try:
        locker.set_autocommit(False)
        with locker.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM ingest_event WHERE source = 'aged' "
                "AND payload->>'event_name' = 'old.0' FOR UPDATE"
            )
        purge, purge_errors = in_thread(
            events_purge_expired, event_class="audit_event", triggered_by="test-holds"
        )
        wait_for_blocked("DELETE FROM")
        hold, hold_errors = in_thread(place_hold, owner, numbers=covered)
        hold.join(timeout=20)
        assert not hold.is_alive()
        assert hold_errors == []
    finally:
        locker.rollback()
        locker.close()
    purge.join(timeout=30)
    assert purge_errors == []
    assert surviving() == set(covered)
    run = PurgeRun.objects.get(triggered_by="test-holds")
    assert (run.status, run.rows_deleted, run.rows_kept_by_holds) == ("succeeded", 100, 100)


def test_a_batch_finishing_while_a_hold_is_being_placed_waits_for_it_and_honours_it(
    owner, settings
):
    """A batch ready to commit while a hold's transaction is still open (an approval
    placing it) rolls back, waits for that transaction, and is redone under the hold."""
    settings.TELEMETRY_PURGE_BATCH_SIZE = 1000
    store_old(200)
    covered = range(100, 200)
    placed, commit = threading.Event(), threading.Event()

    def place_in_open_transaction():
        with transaction.atomic():
            place_hold(owner, numbers=covered)
            placed.set()
            assert commit.wait(timeout=20)

    locker = connections.create_connection("default")
    try:
        locker.set_autocommit(False)
        with locker.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM ingest_event WHERE source = 'aged' "
                "AND payload->>'event_name' = 'old.0' FOR UPDATE"
            )
        purge, purge_errors = in_thread(
            events_purge_expired, event_class="audit_event", triggered_by="test-holds"
        )
        wait_for_blocked("DELETE FROM")
        hold, hold_errors = in_thread(place_in_open_transaction)
        assert placed.wait(timeout=20)
    finally:
        locker.rollback()
        locker.close()
    # The batch's DELETE ends; its commit must now wait for the hold's transaction.
    wait_for_blocked("SELECT pg_advisory_xact_lock_shared")
    assert surviving() == set(range(200))
    commit.set()
    hold.join(timeout=20)
    purge.join(timeout=30)
    assert (hold_errors, purge_errors) == ([], [])
    assert surviving() == set(covered)
    run = PurgeRun.objects.get(triggered_by="test-holds")
    assert (run.status, run.rows_deleted, run.rows_kept_by_holds) == ("succeeded", 100, 100)


def test_a_hold_committed_while_a_partition_is_dropped_keeps_the_partition(owner, settings):
    """A hold that commits while a wholly expired day partition is being detached keeps
    that day: the drop is rolled back and the day is trimmed around the hold instead."""
    settings.TELEMETRY_PURGE_LOCK_TIMEOUT_MS = 60_000  # the DETACH waits (no retry) here
    start = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(
        days=40
    )
    store_old(50, start=start, schema=DIAGNOSTIC)
    partitions_maintain(event_class="client_diagnostic", days_ahead=0)
    day_table = day_partition_name("client_diagnostic", start.date())
    covered = range(10, 20)
    locker = connections.create_connection("default")
    try:
        locker.set_autocommit(False)
        with locker.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {day_table}")  # noqa: S608
            assert cursor.fetchone()[0] == 50
        purge, purge_errors = in_thread(
            events_purge_expired, event_class="client_diagnostic", triggered_by="test-holds"
        )
        wait_for_blocked("ALTER TABLE")
        hold, hold_errors = in_thread(
            place_hold,
            owner,
            numbers=covered,
            start=start,
            event_class=EventClass.objects.get(name="client_diagnostic"),
        )
        hold.join(timeout=20)
        assert not hold.is_alive()
        assert hold_errors == []
    finally:
        locker.rollback()
        locker.close()
    purge.join(timeout=30)
    assert purge_errors == []
    assert surviving("client_diagnostic") == set(covered)
    run = PurgeRun.objects.get(triggered_by="test-holds")
    assert run.partitions_dropped == []
    assert (run.rows_deleted, run.rows_kept_by_holds) == (40, 10)
