"""Builders shared by the tests: events in the wire format and a client for the ingest API."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.test import Client

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
