"""Rendering of a subject's stored events as JSONL or CSV, a line at a time (streamed)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from .selectors import EXPORT_COLUMNS

EXPORT_FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def export_lines(rows: Iterable[dict], export_format: str) -> Iterator[str]:
    """The rows as JSONL (payload as JSON) or CSV (payload as its stored JSON text)."""
    if export_format == "jsonl":
        return _jsonl(rows)
    if export_format == "csv":
        return _csv(rows)
    raise ValueError(f"unknown export format {export_format!r}")


def _jsonl(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps({**row, "payload": json.loads(row["payload"])}) + "\n"


def _csv(rows: Iterable[dict]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
