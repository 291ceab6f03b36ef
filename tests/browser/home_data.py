"""Rows for the governance-home browser tests and screenshots: people in each role, open
change requests, tallies for the last day, a purge, a hold, a subject request, a check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from governance.choices import ChangeKind
from governance.conformance import CatalogueEntry, check_files
from governance.conformance_record import KEY, conformance_check_record
from governance.models import EventClass, LegalHold
from governance.roles import (
    GOVERNANCE_APPROVER,
    GOVERNANCE_OWNER,
    PRIVACY_OFFICER,
    READ_ONLY_AUDITOR,
    SECURITY_ANALYST,
    roles_sync,
)
from governance.services import change_request_draft
from ingest.models import IngestTally, PurgeRun
from ingest.pipeline.tally import hour_of
from privacy.services import subject_request_submit
from telemetry_platform.beat import beat_schedule_seed
from telemetry_platform.redis_client import redis_client

PASSWORD = "pw-home-1!"
PEOPLE = {
    "olivia": (GOVERNANCE_OWNER,),
    "oscar": (GOVERNANCE_OWNER,),
    "april": (GOVERNANCE_APPROVER,),
    "sam": (SECURITY_ANALYST,),
    "audrey": (READ_ONLY_AUDITOR,),
    "pia": (PRIVACY_OFFICER,),
    "paul": (PRIVACY_OFFICER,),
}
CLIENT_SCHEMA = "openagents.sync.client_telemetry.v1"
DIAGNOSTIC_SCHEMA = "telemetry.client_diagnostic.v1"
AUDIT_SCHEMA = "telemetry.audit_event.v1"


def _tally(hour: datetime, source: str, schema: str, status: str, count: int, **extra) -> None:
    IngestTally.objects.create(
        hour=hour,
        source=source,
        event_class=extra.pop("event_class", "client_diagnostic"),
        schema_name=schema,
        status=status,
        count=count,
        **extra,
    )


def tallies_last_day(now: datetime) -> None:
    """A day of traffic: web-shell and ios client telemetry, control-service audit events,
    with wrong_type rejections at reconnect.attempt from web-shell 1.2.0 peaking now."""
    for back in range(24):
        hour = hour_of(now - timedelta(hours=back))
        _tally(hour, "web-shell", CLIENT_SCHEMA, "accepted", 40_000 + back * 900)
        _tally(hour, "web-shell", CLIENT_SCHEMA, "duplicate", 120 + back)
        _tally(hour, "ios", DIAGNOSTIC_SCHEMA, "accepted", 9_000 + back * 100)
        _tally(hour, "control-service", AUDIT_SCHEMA, "accepted", 2_500, event_class="audit_event")
        _tally(
            hour,
            "web-shell",
            CLIENT_SCHEMA,
            "rejected",
            1_204 if back == 0 else 60 + back * 7,
            code="wrong_type",
            field_path="reconnect.attempt",
            app_version="1.2.0",
        )
        if back % 3 == 0:
            _tally(
                hour,
                "ios",
                DIAGNOSTIC_SCHEMA,
                "rejected",
                35,
                code="missing_required",
                field_path="envelope.event_id",
                app_version="4.1.0",
            )


def governance_home_data() -> dict[str, object]:
    """Everything the home shows, for every role; returns the people and the headline."""
    roles_sync(group_model=Group, permission_model=Permission)
    users = {}
    for name, roles in PEOPLE.items():
        user = get_user_model().objects.create_user(name, password=PASSWORD, is_staff=True)
        user.groups.add(*Group.objects.filter(name__in=roles))
        users[name] = user
    users["root"] = get_user_model().objects.create_superuser("root", password=PASSWORD)
    change_request_draft(
        kind=ChangeKind.CLASS_RETENTION,
        target="event_class:client_diagnostic",
        payload={"retention_days": 45},
        reason="incident reviews need six weeks",
        actor=users["olivia"],
    )
    change_request_draft(
        kind=ChangeKind.CLASS_RETENTION,
        target="event_class:service_metric",
        payload={"retention_days": 120},
        reason="capacity planning looks back four months",
        actor=users["oscar"],
    )
    now = datetime.now(UTC)
    tallies_last_day(now)
    LegalHold.objects.create(
        reason="case 2026-114 (billing dispute)",
        owner=users["olivia"],
        event_class=EventClass.objects.get(name="audit_event"),
        expires_at=now + timedelta(days=5),
    )
    subject_request_submit(
        kind="erasure", identifiers={"user_id": ["alice"]}, reason="art. 17", actor=users["pia"]
    )
    run = PurgeRun.objects.create(
        event_class_id="client_diagnostic",
        cutoff=now - timedelta(days=30),
        status=PurgeRun.Status.SUCCEEDED,
        partitions_dropped=["ingest_event_client_diagnostic_d20261101"],
        rows_deleted=183_211,
        finished_at=now - timedelta(minutes=43),
        duration_seconds=2.41,
    )
    PurgeRun.objects.filter(pk=run.pk).update(started_at=now - timedelta(minutes=43))
    beat_schedule_seed()
    redis_client().delete(KEY)
    return {"users": users, "now": now}


def conformance_recorded(directory) -> None:
    """One recorded check: an ok file and one referencing a metric nothing emits."""
    ok = directory / "ingest-alerts.yaml"
    ok.write_text(
        "groups:\n- name: ingest\n  rules:\n  - alert: Rejections\n"
        "    expr: rate(tgp_events_total[5m]) > 0\n"
    )
    bad = directory / "legacy-dashboard-rules.yaml"
    bad.write_text(
        "groups:\n- name: old\n  rules:\n  - alert: Gone\n    expr: legacy_queue_depth > 10\n"
    )
    report = check_files([ok, bad], [CatalogueEntry("tgp_events_total", "counter")])
    assert conformance_check_record(report)
