"""Audit test data: events ingested through the pipeline, and the shared search corpus."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest import pipeline
from tests.factories import AUDIT_SCHEMA, iso

NOW = datetime.now(UTC)


def audit(name: str, *, minutes_ago: float = 10, source: str = "control-service", **fields):
    """Ingest one audit event through the pipeline (as the control service would send it)."""
    event = {
        "event_name": name,
        "outcome": "success",
        "occurred_at": iso(NOW - timedelta(minutes=minutes_ago)),
        **fields,
    }
    result = pipeline.ingest_batch(
        [pipeline.RawItem(AUDIT_SCHEMA, event)], pipeline.IngestContext(source=source)
    )
    assert result.results[0].status == "accepted", result.as_dict()


def diagnostic(request_id: str, *, minutes_ago: float, event_id: str = "d1"):
    """Ingest one client diagnostic correlated by request id."""
    event = {
        "envelope": {
            "event_id": event_id,
            "occurred_at": iso(NOW - timedelta(minutes=minutes_ago)),
            "correlation": {"request_id": request_id},
        },
        "name": "slow.render",
    }
    result = pipeline.ingest_batch(
        [pipeline.RawItem("telemetry.client_diagnostic.v1", event)],
        pipeline.IngestContext(source="web"),
    )
    assert result.results[0].status == "accepted", result.as_dict()


@pytest.fixture
def corpus(platform_config):
    """Four recent audit events of the control service, one older, one of billing."""
    audit(
        "auth.login",
        minutes_ago=5,
        user_id="user_929583699",
        request_id="req_a",
        session_id="sess_1",
        org_id="org_3186027",
        attributes={"client": "ios"},
    )
    audit(
        "auth.logout",
        minutes_ago=6,
        user_id="eli.898485@corp.test",
        outcome="rejected",
        attributes={"reason": "expired token"},
    )
    audit(
        "autopilot.updated",
        minutes_ago=7,
        user_id="user_1",
        request_id="req_b",
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        device_id="965eda32-dae4-4550-8201-e2bd73ab4876",
        attributes={"field_count": "3"},
    )
    audit("auth.login", minutes_ago=60 * 30, user_id="user_929583699")  # outside 24 h
    audit("billing.charged", minutes_ago=8, source="billing", attributes={"plan": "team"})
