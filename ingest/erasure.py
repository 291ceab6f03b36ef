"""Erasure of stored events by row: audit rows leave a tombstone in their chain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection

from telemetry_platform.conf import telemetry_settings

from .models import AuditChainTombstone
from .pipeline.store import AUDIT_EVENT_CLASS, _chain_lock_key


@dataclass(frozen=True)
class StoredRow:
    """What an erasure needs of one stored event: where it is and its chain links."""

    event_class: str
    occurred_at: datetime
    id: int
    source: str
    chain_seq: int | None
    chain_prev: str | None
    chain_link: str | None

    @property
    def day(self) -> date:
        return self.occurred_at.astimezone(UTC).date()


STORED_ROW_COLUMNS = "event_class, occurred_at, id, source, chain_seq, chain_prev, chain_link"


def events_erase(rows: Sequence[StoredRow], *, erased_by: str, erased_at: datetime) -> int:
    """Delete ``rows`` in the caller's transaction; return how many were deleted.

    Each chained audit row is replaced in its chain by a sealed tombstone (its position
    and links, none of its content), under the chain's lock, so verification still
    walks the chain and any other change still shows.
    """
    if not rows:
        return 0
    key_id = telemetry_settings.AUDIT_DIGEST_KEY_ID
    key = telemetry_settings.AUDIT_DIGEST_KEYS[key_id]
    chains: dict[tuple[str, date], list[StoredRow]] = defaultdict(list)
    for row in rows:
        if row.event_class == AUDIT_EVENT_CLASS and row.chain_seq is not None:
            chains[(row.source, row.day)].append(row)
    tombstones = []
    with connection.cursor() as cursor:
        for source, day in sorted(chains):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_chain_lock_key(source, day)])
            for row in chains[(source, day)]:
                tombstone = AuditChainTombstone(
                    source=source,
                    day=day,
                    chain_seq=row.chain_seq,
                    chain_prev=row.chain_prev or "",
                    chain_link=row.chain_link or "",
                    erased_by=erased_by,
                    erased_at=erased_at,
                )
                tombstone.seal(key_id=key_id, key=key)
                tombstones.append(tombstone)
        AuditChainTombstone.objects.bulk_create(tombstones)
        # The partition key with the id lets each row be found in its own day partition.
        cursor.execute(
            "DELETE FROM ingest_event WHERE (event_class, occurred_at, id) IN "
            "(SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::bigint[]))",
            [
                [row.event_class for row in rows],
                [row.occurred_at for row in rows],
                [row.id for row in rows],
            ],
        )
        return cursor.rowcount
