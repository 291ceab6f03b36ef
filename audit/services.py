"""The only write path for audit events: the platform records its own actions here."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from governance.defaults import PLATFORM_AUDIT_SCHEMA, PLATFORM_SOURCE
from telemetry_platform.conf import telemetry_settings

from .chain import GENESIS, LINK_VERSION, chain_link, row_content
from .models import AuditChainHead

if TYPE_CHECKING:
    from ingest.pipeline import IngestContext, PreparedEvent


def audit_event_record(
    *,
    event_name: str,
    actor: AbstractBaseUser | None,
    outcome: str = "success",
    attributes: Mapping[str, str] | None = None,
    request_id: str = "",
) -> bool:
    """Write one platform audit event (source ``platform``) in the caller's transaction.

    It travels the same pipeline as ingested audit events, so the same validation and
    field policies apply. Return False when the audit schema is not registered yet
    (only during the very first configuration load).
    """
    from ingest import pipeline  # the pipeline imports governance, which imports us

    occurred_at = timezone.now()
    event = {
        "event_name": event_name,
        "outcome": outcome,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "attributes": dict(attributes or {}),
        "source": PLATFORM_SOURCE,
    }
    if request_id:
        event["request_id"] = request_id
    if actor is not None and actor.is_authenticated:
        event["user_id"] = actor.get_username()
    context = pipeline.IngestContext(source=PLATFORM_SOURCE, request_id=request_id)
    pipeline.schema_plans.refresh(throttle=False)
    prepared = pipeline.prepare_event(pipeline.RawItem(PLATFORM_AUDIT_SCHEMA, event), context)
    if isinstance(prepared, pipeline.Rejection):
        if prepared.code == "unknown_schema":
            return False
        raise ValueError(f"platform audit event refused: {prepared.code} at {prepared.field}")
    pipeline.persist_events([prepared], context)
    return True


def _chain_lock_key(source: str, day: date) -> int:
    digest = hashlib.sha256(f"audit-chain:{source}:{day.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def audit_events_append(events: Sequence[PreparedEvent], context: IngestContext) -> set[tuple]:
    """Append audit events to their (source, day) chains and store them; return new keys.

    Per chain, under a transaction-scoped advisory lock: duplicates are set aside first
    (a duplicate must not take a link), then each new event is linked to its
    predecessor and the chain head moves on, in the caller's transaction.
    """
    from ingest.pipeline import insert_events

    key_id = telemetry_settings.HASH_KEY_ID
    key = telemetry_settings.HASH_KEYS[key_id]
    groups: dict[tuple[str, date], list[PreparedEvent]] = defaultdict(list)
    for event in events:
        groups[(event.source, event.occurred_at.astimezone(UTC).date())].append(event)
    inserted: set[tuple] = set()
    for (source, day), group in sorted(groups.items()):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_chain_lock_key(source, day)])
            # Bounded to the chain's day, so only that day's partition is probed.
            cursor.execute(
                "SELECT event_id, occurred_at FROM ingest_event "
                "WHERE event_class = 'audit_event' AND source = %s AND event_id = ANY(%s) "
                "AND occurred_at >= %s AND occurred_at < %s",
                [
                    source,
                    [event.event_id for event in group],
                    datetime.combine(day, time.min, tzinfo=UTC),
                    datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC),
                ],
            )
            existing = {(event_id, occurred_at) for event_id, occurred_at in cursor.fetchall()}
        fresh = []
        for event in group:
            identity = (event.event_id, event.occurred_at)
            if identity not in existing:
                existing.add(identity)
                fresh.append(event)
        if not fresh:
            continue
        head = AuditChainHead.objects.filter(source=source, day=day).first()
        if head is None:
            head = AuditChainHead(source=source, day=day, last_seq=0, last_link=GENESIS)
        seq, previous = head.last_seq, head.last_link
        chain = {}
        for event in fresh:
            seq += 1
            content = row_content(
                {
                    "chain_seq": seq,
                    "event_class": event.event_class,
                    "schema_revision_id": event.schema_revision_id,
                    "source": event.source,
                    "event_id": event.event_id,
                    "occurred_at": event.occurred_at,
                    "received_at": context.received_at,
                    "request_id": event.request_id,
                    "trace_id": event.trace_id,
                    "actor_hash": event.actor_hash,
                    "ingest_request_id": context.request_id,
                    "payload": event.payload,
                    "redactions": event.redactions,
                }
            )
            link = chain_link(previous, content, key_id=key_id, key=key, version=LINK_VERSION)
            chain[event.key] = (seq, previous, link)
            previous = link
        inserted |= insert_events(fresh, context, chain)
        head.last_seq, head.last_link = seq, previous
        _head_seal(head)
        head.save()
    return inserted


def _head_seal(head: AuditChainHead) -> None:
    key_id = telemetry_settings.AUDIT_DIGEST_KEY_ID
    head.seal(key_id=key_id, key=telemetry_settings.AUDIT_DIGEST_KEYS[key_id])


def audit_chain_heads_purge_record(*, day_from: date | None, day_to: date) -> int:
    """Record on the heads of chains a purge touched how many links are gone; return how many.

    Called after the purge's deletes, for the days it could delete from. A head whose
    chain lost rows is marked purged (first time) and its ``rows_purged`` raised to the
    links now absent; the head is re-sealed under the chain's lock, so appends of late
    events cannot interleave. A count that fell (rows reappearing) is left for
    verification to report: a purge never explains that.
    """
    start = datetime.combine(day_from, time.min, tzinfo=UTC) if day_from else None
    end = datetime.combine(day_to + timedelta(days=1), time.min, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT head.id FROM audit_auditchainhead head
            LEFT JOIN (
                SELECT source, (occurred_at AT TIME ZONE 'UTC')::date AS day,
                       count(DISTINCT chain_seq) AS kept
                FROM ingest_event
                WHERE event_class = 'audit_event' AND chain_seq IS NOT NULL
                  AND occurred_at < %s AND (%s::timestamptz IS NULL OR occurred_at >= %s)
                GROUP BY 1, 2
            ) stored ON stored.source = head.source AND stored.day = head.day
            WHERE head.day <= %s AND (%s::date IS NULL OR head.day >= %s)
              AND head.last_seq - coalesce(stored.kept, 0) > head.rows_purged
            """,
            [end, start, start, day_to, day_from, day_from],
        )
        candidates = [row[0] for row in cursor.fetchall()]
    recorded = 0
    for head_id in candidates:
        with transaction.atomic():
            head = AuditChainHead.objects.get(pk=head_id)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s)", [_chain_lock_key(head.source, head.day)]
                )
            head = AuditChainHead.objects.select_for_update().get(pk=head_id)
            absent = head.last_seq - _links_stored(head)
            if absent <= head.rows_purged:
                continue
            head.purged_at = head.purged_at or timezone.now()
            head.rows_purged = absent
            _head_seal(head)
            head.save(update_fields=["purged_at", "rows_purged", "digest", "updated_at"])
            recorded += 1
    return recorded


def _links_stored(head: AuditChainHead) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT chain_seq) FROM ingest_event "
            "WHERE event_class = 'audit_event' AND source = %s "
            "AND chain_seq BETWEEN 1 AND %s AND occurred_at >= %s AND occurred_at < %s",
            [
                head.source,
                head.last_seq,
                datetime.combine(head.day, time.min, tzinfo=UTC),
                datetime.combine(head.day + timedelta(days=1), time.min, tzinfo=UTC),
            ],
        )
        return cursor.fetchone()[0]
