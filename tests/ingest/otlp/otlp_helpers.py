"""Builders of OTLP JSON requests (the OTLP JSON mapping, built per the specification)."""

from __future__ import annotations

import json
import time
from typing import Any

from django.db import connection


def attr(key: str, value: Any) -> dict[str, Any]:
    """One KeyValue in the OTLP JSON mapping (int64 as a string)."""
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def now_nanos(seconds_ago: float = 60) -> str:
    return str(int((time.time() - seconds_ago) * 1e9))


def log_record(*, attributes: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "timeUnixNano": now_nanos(),
        "severityNumber": 9,
        "severityText": "INFO",
        "body": {"stringValue": "user signed in"},
        "attributes": [attr(k, v) for k, v in (attributes or {}).items()],
    }
    record.update(fields)
    return record


def logs_request(
    *records: dict[str, Any], service: str = "control-service", scope: str = "app"
) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": [attr("service.name", service)]},
                "scopeLogs": [{"scope": {"name": scope}, "logRecords": list(records)}],
            }
        ]
    }


def post_otlp(client, key: str, path: str, body: Any, **extra: Any):
    data = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(
        path,
        data=data,
        content_type=extra.pop("content_type", "application/json"),
        HTTP_AUTHORIZATION=f"Bearer {key}",
        **extra,
    )


def stored(schema: str) -> list[dict[str, Any]]:
    """Stored rows of ``schema``: envelope columns and the payload."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.source, e.event_class, e.trace_id, e.actor_hash, e.payload::text "
            "FROM ingest_event e JOIN governance_schemarevision r ON r.id = e.schema_revision_id "
            "JOIN governance_schema s ON s.id = r.schema_id WHERE s.name = %s ORDER BY e.id",
            [schema],
        )
        return [
            {
                "source": source,
                "event_class": event_class,
                "trace_id": trace_id,
                "actor_hash": actor_hash,
                "payload": json.loads(payload),
            }
            for source, event_class, trace_id, actor_hash, payload in cursor.fetchall()
        ]
