"""Builders shared by the tests: events in the wire format and a client for the ingest API."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.test import Client

from tests.protos import CLIENT_TELEMETRY_PROTO

AUDIT_SCHEMA = "telemetry.audit_event.v1"
_counter = itertools.count(1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def audit_event(*, age: timedelta = timedelta(minutes=5), **overrides: Any) -> dict[str, Any]:
    """An audit event in the control service's shape (as the corpus sample has them)."""
    number = next(_counter)
    event = {
        "event_name": "auth.session.created",
        "request_id": f"req_{number:032x}",
        "outcome": "success",
        "occurred_at": iso(datetime.now(UTC) - age),
        "session_id": f"sess_{number}",
        "attributes": {"scopes": "runtime.read", "ttl_seconds": "300"},
    }
    event.update(overrides)
    return event


def batch(*events: dict[str, Any], schema: str = AUDIT_SCHEMA) -> dict[str, Any]:
    """Self-describing batch: each item names its schema."""
    return {"events": [{"schema": schema, "event": event} for event in events]}


class IngestClient:
    """Posts to /api/v1/events with an API key."""

    def __init__(self, client: Client, secret: str) -> None:
        self.client = client
        self.secret = secret

    def post(self, body: Any, *, query: str = "", raw: bytes | None = None, **headers: str):
        data = raw if raw is not None else json.dumps(body)
        return self.client.post(
            f"/api/v1/events{query}",
            data=data,
            content_type=headers.pop("content_type", "application/json"),
            HTTP_AUTHORIZATION=f"Bearer {self.secret}",
            **headers,
        )


CLIENT_TELEMETRY_SCHEMA = "openagents.sync.client_telemetry.v1"
CLIENT_TELEMETRY_MESSAGE = "openagents.sync.v1.ClientTelemetryEvent"


def client_telemetry_events(count: int = 3, *, start_ms: int | None = None) -> list[dict[str, Any]]:
    """Events shaped like the contract's fixture: the four oneof members in turn."""
    start_ms = start_ms or int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000)
    members = [
        (
            "reconnect",
            {
                "attempt": 2,
                "backoff_ms": 950,
                "resumed": True,
                "last_applied_seq": 307,
                "reason_code": "network_path_changed",
            },
        ),
        (
            "auth_failure",
            {"http_status": 401, "reason_code": "token_too_old", "refresh_attempted": True},
        ),
        (
            "replay",
            {
                "status": "stale_cursor",
                "requested_after_seq": 0,
                "oldest_available_seq": 940,
                "head_seq": 1320,
                "catchup_duration_ms": 0,
            },
        ),
        (
            "delivery_error",
            {"channel": "ws", "reason_code": "slow_consumer", "rolling_error_count_5m": 3},
        ),
    ]
    surfaces = ["CLIENT_SURFACE_IOS", "CLIENT_SURFACE_WEB", "CLIENT_SURFACE_DESKTOP"]
    events = []
    for number in range(count):
        member, body = members[number % len(members)]
        events.append(
            {
                "schema_version": CLIENT_TELEMETRY_SCHEMA,
                "event_id": f"evt_{member}_{number:04d}",
                "occurred_at_unix_ms": start_ms + number * 1000,
                "surface": surfaces[number % len(surfaces)],
                "client_build_id": "ios-2026.02.21.1",
                "app_version": "1.0.0",
                "protocol_version": "openagents.sync.v1",
                "topic": "run:019c7f31:events",
                "topic_class": "run_events",
                "actor_scope_hash": "sha256:" + "7d8b8f5b" * 8,
                "session_id": f"sess_{number}",
                member: dict(body),
            }
        )
    return events


REPO_ROOT = Path(__file__).resolve().parent.parent
CLIENT_TELEMETRY_POLICY = REPO_ROOT / "docs/policies/openagents.sync.client_telemetry.v1.yaml"


def client_telemetry_schema_register(*, status: str = "active"):
    """Register the client telemetry contract and apply its shipped field policies."""
    from governance.policies import policy_yaml_parse
    from governance.services import policy_document_apply, schema_register

    revision = schema_register(
        name=CLIENT_TELEMETRY_SCHEMA,
        proto_files={"client_telemetry.proto": CLIENT_TELEMETRY_PROTO},
        message_name=CLIENT_TELEMETRY_MESSAGE,
        event_class="client_diagnostic",
        status=status,
        actor=None,
    ).revision
    document = policy_yaml_parse(CLIENT_TELEMETRY_POLICY.read_text())
    policy_document_apply(document=document, actor=None)
    return revision


def user_with_role(username: str, *roles: str, staff: bool = True):
    """A user in the given role groups (governance/roles.py), able to log in to the admin."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(
        username, f"{username}@example.test", "pw-123456!", is_staff=staff
    )
    user.groups.add(*Group.objects.filter(name__in=roles))
    assert user.groups.count() == len(roles), f"unknown role in {roles}"
    return user


# -- artifact lanes (shapes and numbers from the web-shell sign-off and the runtime's
# fanout metrics answer; copied here so the tests never read the shared corpus) ---------

PERF_SCHEMA = "telemetry.performance_budget_sample.v1"
SERVICE_METRIC_SCHEMA = "telemetry.service_metric.v1"


def compact(moment: datetime) -> str:
    """A timestamp in the sign-off artifact's basic ISO 8601 form (20260222T181254Z)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def perf_signoff_artifact(
    *, build_id: str = "", age: timedelta = timedelta(days=2), **overrides: Any
) -> dict[str, Any]:
    """A release performance sign-off artifact shaped like the web shell's."""
    moment = datetime.now(UTC) - age
    artifact = {
        "timestamp": compact(moment),
        "build_id": build_id or compact(moment - timedelta(seconds=55)),
        "base_url": "http://127.0.0.1:8787",
        "samples": {"latency": 20, "auth_churn": 10, "soak_seconds": 20},
        "budgets": {
            "root_p95_ms": 120,
            "manifest_p95_ms": 100,
            "wasm_p95_ms": 250,
            "auth_verify_p95_ms": 250,
            "sync_token_p95_ms": 250,
            "soak_errors": 0,
            "rss_growth_kb": 51200,
            "js_asset_bytes": 380000,
            "wasm_asset_bytes": 5500000,
            "host_shim_bytes": 12000,
            "wasm_gzip_bytes": 1900000,
        },
        "metrics": {
            "boot": {
                "root": {"p95_ms": 2.03, "avg_ms": 1.78, "max_ms": 2.49},
                "manifest": {"p95_ms": 2.15, "avg_ms": 1.73},
                "wasm_asset": {"p95_ms": 14.23, "avg_ms": 13.81},
                "asset_sizes": {
                    "js_bytes": 141227,
                    "wasm_bytes": 3757639,
                    "host_shim_bytes": 5242,
                    "wasm_gzip_bytes": 1403337,
                },
            },
            "interaction": {
                "auth_verify": {"p95_ms": 1.83, "avg_ms": 1.74},
                "sync_token": {"p95_ms": 1.89, "avg_ms": 1.74},
                "auth_errors": 0,
            },
            "soak": {
                "manifest_poll": {"p95_ms": 2.43, "avg_ms": 1.87},
                "errors": 0,
                "rss_kb": {"min": 22336, "max": 22336, "avg": 22336, "growth": 0},
            },
        },
        "pass": True,
        "budget_failures": [],
    }
    artifact.update(overrides)
    return artifact


PERF_SIGNOFF_SAMPLE_COUNT = 23  # numeric leaves of perf_signoff_artifact()["metrics"]


def delivery_snapshot(*, age: timedelta = timedelta(minutes=1), **overrides: Any) -> dict[str, Any]:
    """A runtime delivery diagnostics snapshot: the fanout metrics answer, with a timestamp."""
    snapshot = {
        "service": "runtime",
        "instance": "runtime-0",
        "timestamp": iso(datetime.now(UTC) - age),
        "driver": "memory",
        "delivery_metrics": {
            "total_polls": 120,
            "throttled_polls": 3,
            "limited_polls": 2,
            "fairness_limited_polls": 5,
            "slow_consumer_evictions": 1,
            "served_messages": 480,
            "active_consumers": 4,
            "recent_disconnect_causes": ["slow_consumer", "slow_consumer", "client_closed"],
        },
        "topic_windows": [
            {
                "topic": "run:019c7f31:events",
                "topic_class": "run_events",
                "qos_tier": "hot",
                "replay_budget_events": 20000,
                "oldest_sequence": 1,
                "head_sequence": 1320,
                "queue_depth": 17,
                "dropped_messages": 0,
                "publish_rate_limit_per_second": 240,
                "max_payload_bytes": 65536,
                "publish_rate_limited_count": 2,
                "frame_size_rejected_count": 0,
                "stale_cursor_budget_exceeded_count": 1,
                "stale_cursor_retention_floor_count": 0,
                "last_violation_reason": None,
            }
        ],
        "consumers": [{"consumer": "edge-a", "topic": "run:019c7f31:events", "lag_events": 12}],
    }
    snapshot.update(overrides)
    return snapshot
