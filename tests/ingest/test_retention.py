"""Retention at scale: day partitions, partition drops, batch deletes, overrides, holds, locks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from governance.models import EventClass, Schema
from governance.selectors import schema_plans
from governance.services import (
    RetentionError,
    event_class_retention_update,
    legal_hold_create,
    legal_hold_release,
    retention_override_set,
)
from ingest import pipeline
from ingest.models import Event, PurgeRun
from ingest.retention import (
    _attached_day_partitions,
    class_purge_lock,
    day_partition_name,
    partitions_maintain,
    purge_preview,
)
from ingest.services import events_purge_expired
from tests.factories import AUDIT_SCHEMA, iso

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DIAGNOSTIC = "telemetry.client_diagnostic.v1"


def store(occurred_at: datetime, *, name: str, schema: str = AUDIT_SCHEMA, user: str = "") -> None:
    """Store an event as if it had been received when it occurred (it then aged in the store)."""
    if schema == AUDIT_SCHEMA:
        body = {"event_name": name, "outcome": "success", "occurred_at": iso(occurred_at)}
        if user:
            body["user_id"] = user
    else:
        body = {"envelope": {"event_id": name, "occurred_at": iso(occurred_at)}, "name": name}
    context = pipeline.IngestContext(source="tests", received_at=occurred_at + timedelta(minutes=1))
    result = pipeline.ingest_batch([pipeline.RawItem(schema, body)], context)
    assert result.results[0].status == "accepted", result.as_dict()


def names(event_class: str = "audit_event") -> set[str]:
    return {
        e.payload.get("event_name") or e.payload.get("name")
        for e in Event.objects.filter(event_class_id=event_class, source="tests")
    }


@pytest.fixture
def owner(platform_config):
    return get_user_model().objects.create_user("counsel", password="pw-123456!")


def test_partitions_are_created_ahead_and_split_out_of_default(platform_config):
    """Maintenance creates day partitions ahead; a day that landed in default is split out."""
    store(NOW - timedelta(days=3), name="early")
    default = "ingest_event_audit_event_default"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {default}")  # noqa: S608
        assert cursor.fetchone()[0] >= 1
    created = partitions_maintain(event_class="audit_event", days_ahead=2, now=NOW)
    attached = _attached_day_partitions("audit_event")
    for offset in range(3):
        assert (NOW + timedelta(days=offset)).date() in attached
    assert (NOW - timedelta(days=3)).date() in attached
    assert any("1 rows moved" in line for line in created)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {day_partition_name('audit_event', (NOW - timedelta(days=3)).date())}"  # noqa: S608
        )
        assert cursor.fetchone()[0] == 1
    assert names() == {"early"}
    assert partitions_maintain(event_class="audit_event", days_ahead=2, now=NOW) == []


def test_wholly_expired_partitions_are_dropped_partial_ones_deleted(platform_config):
    """Old days go by dropping their partition; the cutoff day is trimmed row by row."""
    retention = timedelta(days=400)
    cutoff = NOW - retention
    store(cutoff - timedelta(days=5), name="old-day")
    store(cutoff - timedelta(seconds=1), name="just-expired")
    store(cutoff, name="at-cutoff")
    store(NOW - timedelta(days=1), name="recent")
    partitions_maintain(event_class="audit_event", days_ahead=0, now=NOW)
    result = events_purge_expired(event_class="audit_event", now=NOW)
    assert names() == {"at-cutoff", "recent"}
    run = PurgeRun.objects.get(event_class="audit_event")
    assert run.status == PurgeRun.Status.SUCCEEDED
    assert run.partitions_dropped == [
        day_partition_name("audit_event", (cutoff - timedelta(days=5)).date())
    ]
    assert run.rows_deleted == 2 == result.deleted["audit_event"]
    assert run.cutoff == cutoff


def test_schema_override_keeps_its_events_longer(platform_config):
    """An override longer than the class keeps that schema's rows and blocks a partition drop."""
    retention_override_set(
        schema=Schema.objects.get(name=DIAGNOSTIC), retention_days=60, reason="incident", actor=None
    )
    schema_plans.clear()
    store(NOW - timedelta(days=40), name="diag-40d", schema=DIAGNOSTIC)
    store(NOW - timedelta(days=70), name="diag-70d", schema=DIAGNOSTIC)
    partitions_maintain(event_class="client_diagnostic", days_ahead=0, now=NOW)
    events_purge_expired(event_class="client_diagnostic", now=NOW)
    assert names("client_diagnostic") == {"diag-40d"}


def test_guard_rails_refuse_retention_outside_limits(platform_config, settings):
    """Retention below the class minimum or above its maximum is refused."""
    settings.TELEMETRY_RETENTION_LIMITS = {"audit_event": [365, 2555], "*": [7, 400]}
    audit = EventClass.objects.get(name="audit_event")
    with pytest.raises(RetentionError, match="between 365 and 2555"):
        event_class_retention_update(event_class=audit, retention_days=30, actor=None)
    with pytest.raises(RetentionError, match="between 7 and 400"):
        retention_override_set(
            schema=Schema.objects.get(name=DIAGNOSTIC), retention_days=1000, reason="x", actor=None
        )


def test_dry_run_counts_what_a_new_retention_would_remove(platform_config, owner):
    """The preview counts eligible and held events without deleting anything."""
    for days in (10, 20, 40):
        store(NOW - timedelta(days=days), name=f"diag-{days}", schema=DIAGNOSTIC)
    diagnostic = EventClass.objects.get(name="client_diagnostic")
    assert purge_preview(diagnostic, now=NOW).eligible == 1
    legal_hold_create(
        reason="case 7",
        owner=owner,
        occurred_from=NOW - timedelta(days=25),
        occurred_to=NOW - timedelta(days=15),
    )
    preview = purge_preview(diagnostic, retention_days=15, now=NOW)
    assert (preview.eligible, preview.kept_by_holds) == (1, 1)
    assert len(names("client_diagnostic")) == 3


@pytest.mark.parametrize("criterion", ["event_class", "schema", "actor", "time_range"])
def test_held_events_are_never_purged_until_released(platform_config, owner, criterion):
    """A hold by class, schema, actor (raw id hashed) or time range keeps matching events."""
    store(NOW - timedelta(days=500), name="held", user="user_929583699")
    store(NOW - timedelta(days=501), name="not-held", user="user_1")
    kwargs = {
        "event_class": {"event_class": EventClass.objects.get(name="audit_event")},
        "schema": {"schema": Schema.objects.get(name=AUDIT_SCHEMA)},
        "actor": {"actor_identifier": "user_929583699"},
        "time_range": {
            "occurred_from": NOW - timedelta(days=500, hours=1),
            "occurred_to": NOW - timedelta(days=499),
        },
    }[criterion]
    hold = legal_hold_create(reason="litigation", owner=owner, **kwargs)
    assert "user_929583699" not in str(hold.actor_hashes)
    partitions_maintain(event_class="audit_event", days_ahead=0, now=NOW)
    events_purge_expired(event_class="audit_event", now=NOW)
    expected = {"held", "not-held"} if criterion in ("event_class", "schema") else {"held"}
    assert names() == expected
    run = PurgeRun.objects.filter(event_class="audit_event").latest("started_at")
    assert run.rows_kept_by_holds == len(expected)
    legal_hold_release(hold=hold, actor=owner)
    events_purge_expired(event_class="audit_event", now=NOW)
    assert names() == set()


def test_expired_hold_no_longer_protects(platform_config, owner):
    """A hold past its expiry no longer keeps events."""
    store(NOW - timedelta(days=450), name="was-held")
    legal_hold_create(
        reason="old case",
        owner=owner,
        schema=Schema.objects.get(name=AUDIT_SCHEMA),
        expires_at=NOW - timedelta(days=1),
    )
    events_purge_expired(event_class="audit_event", now=NOW)
    assert names() == set()


def test_only_one_purge_per_class_at_a_time(platform_config):
    """While another session holds the class's advisory lock, a purge is skipped."""
    store(NOW - timedelta(days=450), name="old")
    from django.db import connections

    other = connections.create_connection("default")
    try:
        from ingest.retention import _lock_key

        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_key("audit_event")])
        result = events_purge_expired(event_class="audit_event", now=NOW)
        assert result.statuses["audit_event"] == "skipped"
        assert names() == {"old"}
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key("audit_event")])
    finally:
        other.close()
    with class_purge_lock("audit_event") as acquired:
        assert acquired


def test_a_run_left_running_is_marked_interrupted(platform_config):
    """A purge killed midway leaves a 'running' record; the next run marks it and finishes."""
    stale = PurgeRun.objects.create(event_class_id="audit_event", cutoff=NOW)
    store(NOW - timedelta(days=450), name="old")
    events_purge_expired(event_class="audit_event", now=NOW)
    stale.refresh_from_db()
    assert stale.status == PurgeRun.Status.INTERRUPTED
    assert names() == set()
