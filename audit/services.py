"""The only write path for audit events: the platform records its own actions here."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.utils import timezone

from governance.defaults import PLATFORM_AUDIT_SCHEMA, PLATFORM_SOURCE
from telemetry_platform.conf import telemetry_settings

from .chain import GENESIS, canonical_content, chain_link
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
        seq, previous = (head.last_seq, head.last_link) if head else (0, GENESIS)
        chain = {}
        for event in fresh:
            seq += 1
            content = canonical_content(
                event_id=event.event_id,
                source=event.source,
                occurred_at=event.occurred_at,
                payload=event.payload,
            )
            link = chain_link(previous, content, key_id=key_id, key=key)
            chain[event.key] = (seq, previous, link)
            previous = link
        inserted |= insert_events(fresh, context, chain)
        AuditChainHead.objects.update_or_create(
            source=source, day=day, defaults={"last_seq": seq, "last_link": previous}
        )
    return inserted
