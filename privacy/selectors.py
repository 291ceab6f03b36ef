"""Reads of a data subject's stored events, by the GIN-indexed subject hashes (no payload scan)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from governance.models import EventClass, LegalHold, RetentionOverride
from ingest.erasure import STORED_ROW_COLUMNS, StoredRow
from ingest.retention import _hold_predicate, legal_holds_active
from telemetry_platform.db_router import read_connection

from .models import SubjectRequest

SUBJECT_SQL = "subject_hashes && %s::text[]"


def subject_counts(hashes: Sequence[str]) -> dict[str, dict[str, int]]:
    """Stored events of the subject, per event class and UTC day partition."""
    counts: dict[str, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_class, (occurred_at AT TIME ZONE 'UTC')::date, count(*) "  # noqa: S608
            f"FROM ingest_event WHERE {SUBJECT_SQL} GROUP BY 1, 2 ORDER BY 1, 2",
            [list(hashes)],
        )
        for event_class, day, count in cursor.fetchall():
            counts.setdefault(event_class, {})[day.isoformat()] = count
    return counts


def subject_rows_unheld(
    hashes: Sequence[str], holds: Sequence[LegalHold], *, limit: int
) -> list[StoredRow]:
    """Up to ``limit`` of the subject's rows that no hold in ``holds`` covers, locked."""
    held, params = _held_sql(holds)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {STORED_ROW_COLUMNS} FROM ingest_event "  # noqa: S608 (constants)
            f"WHERE {SUBJECT_SQL} AND NOT {held} LIMIT %s FOR UPDATE",
            [list(hashes), *params, limit],
        )
        return [StoredRow(*values) for values in cursor.fetchall()]


def subject_rows_held(hashes: Sequence[str], holds: Sequence[LegalHold]) -> list[dict[str, Any]]:
    """Per hold that covers some of the subject's rows: the hold and its rows per class."""
    retained = []
    with connection.cursor() as cursor:
        for hold in holds:
            predicate, params = _hold_predicate(hold)
            cursor.execute(
                "SELECT event_class, count(*) FROM ingest_event "  # noqa: S608 (constants)
                f"WHERE {SUBJECT_SQL} AND {predicate} GROUP BY 1 ORDER BY 1",
                [list(hashes), *params],
            )
            per_class = dict(cursor.fetchall())
            if per_class:
                retained.append(
                    {
                        "hold": hold.pk,
                        "reason": hold.reason,
                        "rows": sum(per_class.values()),
                        "per_class": per_class,
                    }
                )
    return retained


def _held_sql(holds: Sequence[LegalHold]) -> tuple[str, list]:
    if not holds:
        return "FALSE", []
    parts, params = [], []
    for hold in holds:
        predicate, hold_params = _hold_predicate(hold)
        parts.append(predicate)
        params.extend(hold_params)
    return "(" + " OR ".join(parts) + ")", params


def holds_active() -> list[LegalHold]:
    """The legal holds in force now."""
    return legal_holds_active(now=timezone.now())


EXPORT_COLUMNS = (
    "event_class",
    "schema",
    "schema_version",
    "source",
    "event_id",
    "occurred_at",
    "purge_after",
    "payload",
)


def _purge_dates() -> tuple[dict[str, int], dict[str, int]]:
    classes = dict(EventClass.objects.values_list("name", "retention_days"))
    overrides = dict(RetentionOverride.objects.values_list("schema__name", "retention_days"))
    return classes, overrides


def subject_events_export(hashes: Sequence[str], *, chunk: int = 500) -> Iterator[dict[str, Any]]:
    """Every stored event of the subject as stored (redacted), oldest first, with the date
    the current retention purges it; read through a server-side cursor, a chunk at a time."""
    classes, overrides = _purge_dates()
    with read_connection().chunked_cursor() as cursor:
        cursor.itersize = chunk
        cursor.execute(
            "SELECT e.event_class, s.name, r.version, e.source, e.event_id, e.occurred_at, "  # noqa: S608
            "e.payload::text FROM ingest_event e "
            "JOIN governance_schemarevision r ON r.id = e.schema_revision_id "
            "JOIN governance_schema s ON s.id = r.schema_id "
            f"WHERE e.{SUBJECT_SQL} ORDER BY e.occurred_at, e.id",
            [list(hashes)],
        )
        for event_class, schema, version, source, event_id, occurred_at, payload in cursor:
            days = overrides.get(schema, classes.get(event_class, 0))
            yield {
                "event_class": event_class,
                "schema": schema,
                "schema_version": version,
                "source": source,
                "event_id": event_id,
                "occurred_at": occurred_at.isoformat(),
                "purge_after": (occurred_at + timedelta(days=days)).date().isoformat(),
                "payload": payload,
            }


def subject_summary(request: SubjectRequest) -> dict[str, Any]:
    """Counts per class and schema, the oldest and newest event, and the holds that apply."""
    hashes = list(request.subject_hashes)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.event_class, s.name, count(*), min(e.occurred_at), max(e.occurred_at) "  # noqa: S608
            "FROM ingest_event e JOIN governance_schemarevision r ON r.id = e.schema_revision_id "
            "JOIN governance_schema s ON s.id = r.schema_id "
            f"WHERE e.{SUBJECT_SQL} GROUP BY 1, 2 ORDER BY 1, 2",
            [hashes],
        )
        rows = cursor.fetchall()
    oldest: datetime | None = min((row[3] for row in rows), default=None)
    newest: datetime | None = max((row[4] for row in rows), default=None)
    return {
        "request": request.pk,
        "events": sum(row[2] for row in rows),
        "per_schema": [{"event_class": row[0], "schema": row[1], "events": row[2]} for row in rows],
        "oldest": oldest.isoformat() if oldest else None,
        "newest": newest.isoformat() if newest else None,
        "holds": subject_rows_held(hashes, holds_active()),
    }


def suppressed_subject_hashes() -> frozenset[str]:
    """The hashes of every subject under a suppression that is not lifted (the plan cache's)."""
    hashes: set[str] = set()
    for values in SubjectRequest.objects.filter(
        suppressed_at__isnull=False, suppression_lifted_at__isnull=True
    ).values_list("subject_hashes", flat=True):
        hashes.update(values)
    return frozenset(hashes)
