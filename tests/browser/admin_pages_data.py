"""Rows for the browser tests of the existing admin pages: audit events with trace ids and
attributes, a field-policy change request with stored events to preview, performance
history with a regression. Created before the browser starts (Django's async check)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from ingest import pipeline
from tests.factories import AUDIT_SCHEMA, iso, perf_signoff_artifact

PASSWORD = "pw-pages-1!"


def _ingest(event: dict, trace: int) -> None:
    context = pipeline.IngestContext(
        source="control-service", trace_id=f"{trace:032x}"
    )
    result = pipeline.ingest_batch([pipeline.RawItem(AUDIT_SCHEMA, event)], context)
    assert result.results[0].status == "accepted", result.as_dict()


def audit_events(count: int = 40) -> None:
    """Logins and key rotations with long trace ids and attributes (the widest rows)."""
    now = datetime.now(UTC)
    for index in range(count):
        _ingest(
            {
                "event_name": "auth.login" if index % 3 else "api_key.rotated",
                "outcome": "success" if index % 4 else "failure",
                "occurred_at": iso(now - timedelta(minutes=index * 7)),
                "user_id": f"user.{index:04d}@corp.test",
                "request_id": f"req_pages_{index:04d}_" + "x" * 24,
                "attributes": {
                    "client": "web-shell",
                    "reason": "password expired and the second factor was re-enrolled",
                    "region": "eu-west-1",
                },
            },
            trace=0x4BF92F3577B34DA6A3CE929D0E0E0000 + index + 1,
        )


def perf_history() -> None:
    """Six builds of the web shell, the latest one slower (a regression)."""
    from ingest.artifacts import perf_signoff_ingest
    from ingest.pipeline import IngestContext

    for build, value in enumerate([2.0, 2.1, 125.0, 1.9, 2.0, 2.9]):
        artifact = perf_signoff_artifact(
            build_id=f"build-{build}", age=timedelta(days=30 - build)
        )
        artifact["metrics"]["boot"]["root"]["p95_ms"] = value
        report = perf_signoff_ingest(
            content=json.dumps(artifact).encode(), context=IngestContext(source="web-shell")
        )
        assert report.totals()["rejected"] == 0


def field_policy_request():
    """A submitted change request hashing request_id, by someone other than root."""
    from governance.choices import ChangeKind
    from governance.roles import GOVERNANCE_OWNER
    from governance.services import change_request_draft
    from tests.factories import user_with_role

    return change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=f"schema:{AUDIT_SCHEMA}",
        payload={"1": {"request_id": {"classification": "internal", "action": "hash"}}},
        reason="request ids link one person's sessions",
        actor=user_with_role("olivia", GOVERNANCE_OWNER),
    )


def admin_pages_data() -> dict[str, object]:
    """Everything the key pages show, and a superuser to see them."""
    from governance.models import Schema
    from ingest.services import events_purge_expired

    audit_events()
    perf_history()
    events_purge_expired(event_class="audit_event")  # a purge run to list
    change_request = field_policy_request()
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    schema = Schema.objects.get(name=AUDIT_SCHEMA)
    revision = schema.revisions.order_by("version").first()
    return {"change_request": change_request, "schema": schema, "revision": revision}
