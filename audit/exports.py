"""Streaming exports of audit search results (CSV, JSONL): constant memory at any size."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

EXPORT_COLUMNS = (
    "occurred_at",
    "event_name",
    "outcome",
    "source",
    "request_id",
    "trace_id",
    "actor_hash",
    "session_id",
    "org_id",
    "device_id",
    "event_id",
    "attributes",
)
CHUNK = 2000


def _row(event) -> dict:
    payload = event.payload
    return {
        "occurred_at": event.occurred_at.isoformat(),
        "event_name": payload.get("event_name", ""),
        "outcome": payload.get("outcome", ""),
        "source": event.source,
        "request_id": event.request_id,
        "trace_id": event.trace_id,
        "actor_hash": event.actor_hash,
        "session_id": payload.get("session_id", ""),
        "org_id": payload.get("org_id", ""),
        "device_id": payload.get("device_id", ""),
        "event_id": event.event_id,
        "attributes": payload.get("attributes", {}),
    }


def _csv_lines(queryset: QuerySet) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for event in queryset.iterator(chunk_size=CHUNK):
        row = _row(event)
        row["attributes"] = json.dumps(row["attributes"], sort_keys=True)
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _jsonl_lines(queryset: QuerySet) -> Iterator[str]:
    for event in queryset.iterator(chunk_size=CHUNK):
        yield json.dumps(_row(event), sort_keys=True) + "\n"


def export_response(queryset: QuerySet, export_format: str) -> StreamingHttpResponse:
    """Stream ``queryset`` (newest first) as CSV or JSONL; rows are read in chunks."""
    if export_format == "csv":
        lines, content_type = _csv_lines(queryset), "text/csv; charset=utf-8"
    else:
        lines, content_type = _jsonl_lines(queryset), "application/x-ndjson"
    response = StreamingHttpResponse(lines, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-events.{export_format}"'
    return response
