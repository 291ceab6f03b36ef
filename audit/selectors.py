"""Reads of audit data: estimated counts and the end-to-end correlation view."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from ingest.models import Event
from telemetry_platform.db_router import ReadSource, read_connection, replica_reads

CORRELATION_LIMIT = 500


def estimated_count(queryset: QuerySet) -> int:
    """The planner's row estimate for ``queryset``: never a COUNT(*) over the table."""
    sql, params = queryset.order_by().values("id").query.sql_with_params()
    with read_connection().cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def correlated_events(event: Event, *, window: timedelta = timedelta(days=7)) -> list[Event]:
    """Every event of any class sharing ``event``'s request id or trace id, oldest first."""
    keys = Q()
    if event.request_id:
        keys |= Q(request_id=event.request_id)
    if event.trace_id:
        keys |= Q(trace_id=event.trace_id)
    if not keys:
        return [event]
    return list(
        Event.objects.filter(keys)
        .filter(
            occurred_at__gte=event.occurred_at - window, occurred_at__lte=event.occurred_at + window
        )
        .select_related("schema_revision__schema")
        .defer("schema_revision__descriptor_set", "schema_revision__proto_files")
        .order_by("occurred_at", "id")[:CORRELATION_LIMIT]
    )


@dataclass(frozen=True)
class Correlation:
    """One audit event, its timeline, and where (and how fresh) they were read."""

    event: AuditEvent
    timeline: list[Event]
    source: ReadSource


def _correlation_read(pk: int) -> tuple[AuditEvent | None, list[Event]]:
    event = (
        AuditEvent.objects.select_related("schema_revision__schema")
        .defer("schema_revision__descriptor_set", "schema_revision__proto_files")
        .filter(pk=pk)
        .first()
    )
    return event, (correlated_events(event) if event is not None else [])


def correlation_get(pk: int) -> Correlation | None:
    """The audit event ``pk`` and every event correlated with it, or None if there is none.

    Read on the replica within its lag bound. An event the replica has not replayed yet (a
    link followed straight after ingest) is read on the primary, and the source says so.
    """
    with replica_reads() as source:
        event, timeline = _correlation_read(pk)
    if event is None and source.on_replica:
        source = ReadSource(DEFAULT_DB_ALIAS, datetime.now(UTC), reason="behind")
        event, timeline = _correlation_read(pk)
    if event is None:
        return None
    return Correlation(event=event, timeline=timeline, source=source)
