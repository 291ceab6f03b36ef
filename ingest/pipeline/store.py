"""Store a batch: the event rows (COPY or VALUES, deduplicated by the unique key), the audit
chain's links and heads, the statement timeout. The only step that touches the connection.

Audit events are appended to their (source, UTC day) chain here, in the batch's
transaction: the chain's columns live on ``ingest_event`` and its heads beside it, so the
audit app reads them and never writes them.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import threading
import weakref
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    InternalError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone
from psycopg.types.datetime import TimestamptzLoader

from telemetry_platform.conf import telemetry_settings
from telemetry_platform.locks import advisory_key

from ..chain import GENESIS, LINK_VERSION, chain_link, row_content
from ..models import AuditChainHead, AuditChainTombstone
from .prepare import json_dumps
from .tally import BatchTally, TallyRow
from .types import IngestContext, PreparedEvent, RetryableError, StoreRefusedError

logger = logging.getLogger(__name__)

INSERT_COLUMNS = (
    "event_class",
    "schema_revision_id",
    "source",
    "event_id",
    "occurred_at",
    "received_at",
    "request_id",
    "trace_id",
    "actor_hash",
    "ingest_request_id",
    "payload",
    "redactions",
    "chain_seq",
    "chain_prev",
    "chain_link",
    "subject_hashes",
)
# Rows are COPied (binary) into a per-connection temporary staging table, then moved with
# one INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING: COPY has no ON CONFLICT, and
# binding the batch as parameters (a list per column, or thousands of placeholders) cost
# the server process ten times what COPY does (65-75 µs against 5 µs per row measured;
# PostgreSQL's side is the same). jsonb columns are staged as text and cast in the INSERT,
# so payloads are encoded once, by us.
STAGE_TABLE = "ingest_event_stage"
_STAGE_TYPES = {
    "event_class": "text",
    "schema_revision_id": "int8",
    "source": "text",
    "event_id": "text",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
    "request_id": "text",
    "trace_id": "text",
    "actor_hash": "text",
    "ingest_request_id": "text",
    "payload": "text",
    "redactions": "text",
    "chain_seq": "int8",
    "chain_prev": "text",
    "chain_link": "text",
    "subject_hashes": "text[]",
}
_JSONB_COLUMNS = frozenset({"payload", "redactions"})
# Each call's rows carry the call's number: a transaction can insert several times (the
# audit path does, once per chain), and each INSERT must take only its own rows.
STAGE_COPY_TYPES = ["int8", *(_STAGE_TYPES[column] for column in INSERT_COLUMNS)]
_STAGE_COLUMNS_SQL = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} (stage_call int8, "
    + ", ".join(f"{column} {_STAGE_TYPES[column]}" for column in INSERT_COLUMNS)
    + ")"
)
# ON COMMIT DELETE ROWS empties it at the end of each transaction that used it. The table
# lives as long as the connection (created at most once per connection, see _stage_ready).
STAGE_CREATE_SQL = _STAGE_COLUMNS_SQL + " ON COMMIT DELETE ROWS"
# Under transaction pooling (PgBouncer pool_mode=transaction) consecutive transactions of
# one client connection run on different server sessions: a session's table cannot be
# relied on, so each transaction that stages creates the table and its commit drops it.
STAGE_CREATE_TRANSACTION_SQL = _STAGE_COLUMNS_SQL + " ON COMMIT DROP"
POOL_MODE_TRANSACTION = "transaction"
STAGE_COPY_SQL = (
    f"COPY {STAGE_TABLE} (stage_call, {', '.join(INSERT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
)
INSERT_SQL = (
    f"INSERT INTO ingest_event ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 (constants)
    "SELECT "
    + ", ".join(
        f"{column}::jsonb" if column in _JSONB_COLUMNS else column for column in INSERT_COLUMNS
    )
    + f" FROM {STAGE_TABLE} WHERE stage_call = %s ON CONFLICT DO NOTHING "
    "RETURNING event_class, source, event_id, occurred_at"
)
_stage_calls = itertools.count(1)
# Up to this many rows an INSERT ... VALUES carries them (one round trip); beyond it, the
# staging table (client-side binding of many values costs more than COPY's round trips).
VALUES_MAX_ROWS = 8
STATEMENT_TIMEOUT_SQL = "SELECT set_config('statement_timeout', %s, true)"
# psycopg connections known to hold a committed staging table.
_staged_connections: weakref.WeakSet = weakref.WeakSet()
AUDIT_EVENT_CLASS = "audit_event"
DUPLICATE_PROBE_SQL = (
    "SELECT found.event_id, found.occurred_at "
    "FROM unnest(%s::text[], %s::timestamptz[]) AS probe(event_id, occurred_at) "
    "CROSS JOIN LATERAL (SELECT e.event_id, e.occurred_at FROM ingest_event e "
    "WHERE e.event_class = 'audit_event' AND e.source = %s AND e.event_id = probe.event_id "
    "AND e.occurred_at = probe.occurred_at AND e.occurred_at >= %s AND e.occurred_at < %s "
    "LIMIT 1) AS found"
)
ChainPosition = tuple[int, str, str]  # (sequence number, previous link, link)


def _stage_ready(cursor: Any) -> None:
    """Create the staging table on this connection unless it is known to exist.

    Known means created in a transaction that committed: a table created in one that
    rolled back is gone, so the mark is only set on commit. Under transaction pooling the
    table belongs to the transaction alone (IF NOT EXISTS: the audit path stages several
    times in one transaction).
    """
    if settings.DATABASE_POOL_MODE == POOL_MODE_TRANSACTION:
        cursor.execute(STAGE_CREATE_TRANSACTION_SQL)
        return
    raw = connection.connection
    if raw in _staged_connections:
        return
    cursor.execute(STAGE_CREATE_SQL)
    transaction.on_commit(lambda: _staged_connections.add(raw))


def insert_events(
    events: Sequence[PreparedEvent],
    context: IngestContext,
    chain: dict[tuple, ChainPosition] | None = None,
    *,
    statement_timeout_ms: int | None = None,
) -> set[tuple]:
    """Insert ``events``; return the keys that were new (the rest were duplicates).

    The unique constraint decides what is a duplicate, so concurrent batches carrying
    the same event cannot both store it. Runs inside the caller's transaction; with
    ``statement_timeout_ms`` the transaction's statement timeout is set in the same
    round trip as the INSERT.
    """
    if not events:
        return set()
    chain = chain or {}
    no_link = (None, None, None)
    dumps = json_dumps
    received_at = context.received_at
    request_id = context.request_id
    rows = (
        (
            event.event_class,
            event.schema_revision_id,
            event.source,
            event.event_id,
            event.occurred_at,
            received_at,
            event.request_id,
            event.trace_id,
            event.actor_hash,
            request_id,
            event.payload_json or dumps(event.payload),
            dumps(event.redactions),
            *(chain.get(event.key, no_link) if chain else no_link),
            # NULL rather than an empty array: most rows name nobody, the GIN index skips them.
            list(event.subject_hashes) if event.subject_hashes else None,
        )
        for event in events
    )
    prefix, prefix_params = "", []
    if statement_timeout_ms is not None:
        prefix, prefix_params = STATEMENT_TIMEOUT_SQL + "; ", [f"{statement_timeout_ms}ms"]
    with connection.cursor() as cursor:
        adapters = getattr(cursor.cursor, "adapters", None)
        if adapters is not None:
            # psycopg's compiled loader: Django's own timestamptz loader (pure Python) cost
            # more per returned row than the rest of the fetch.
            adapters.register_loader("timestamptz", TimestamptzLoader)
        if len(events) <= VALUES_MAX_ROWS:
            # A few rows: one INSERT with their values, one round trip (the staging table
            # would take three: COPY start, COPY data, INSERT).
            params = [value for row in rows for value in row]
            cursor.execute(prefix + _values_insert_sql(len(events)), [*prefix_params, *params])
        else:
            # Only the staging steps run before the statement timeout is set: they touch
            # this session's temporary table alone, so they cannot wait on anyone's lock.
            call = next(_stage_calls)
            if not connection.in_atomic_block:
                raise RuntimeError("the staging table needs the caller's transaction")
            _stage_ready(cursor)
            # COPY goes past Django's cursor wrapper: map its errors to Django's too.
            with connection.wrap_database_errors, cursor.copy(STAGE_COPY_SQL) as copy:
                copy.set_types(STAGE_COPY_TYPES)
                write_row = copy.write_row
                for row in rows:
                    write_row((call, *row))
            cursor.execute(prefix + INSERT_SQL, [*prefix_params, call])
        if prefix:
            cursor.nextset()  # past set_config's result, to the INSERT's
        return {tuple(row) for row in cursor.fetchall()}


@functools.lru_cache(maxsize=VALUES_MAX_ROWS)
def _values_insert_sql(count: int) -> str:
    row = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
    return (
        f"INSERT INTO ingest_event ({', '.join(INSERT_COLUMNS)}) "  # noqa: S608 (constants)
        f"VALUES {', '.join([row] * count)} ON CONFLICT DO NOTHING "
        "RETURNING event_class, source, event_id, occurred_at"
    )


def persist_events(
    events: Sequence[PreparedEvent],
    context: IngestContext,
    *,
    statement_timeout_ms: int | None = None,
) -> set[tuple]:
    """Store a batch: audit events through the audit chain, the rest in one insert.

    ``statement_timeout_ms`` bounds every statement of the caller's transaction from here on.
    """
    audit = [event for event in events if event.event_class == AUDIT_EVENT_CLASS]
    others = [event for event in events if event.event_class != AUDIT_EVENT_CLASS]
    if audit or not others:
        if statement_timeout_ms is not None and events:
            _statement_timeout(statement_timeout_ms)
        statement_timeout_ms = None
    inserted = insert_events(others, context, statement_timeout_ms=statement_timeout_ms)
    if audit:
        inserted |= audit_events_append(audit, context)
    return inserted


TALLY_COLUMNS = (
    "hour",
    "source",
    "event_class",
    "schema_name",
    "status",
    "code",
    "field_path",
    "app_version",
    "shard",
    "count",
)
# Rows per counter: enough that a node's writer threads rarely share one.
TALLY_SHARDS = 8


def tally_upsert(rows: Sequence[TallyRow], *, shard: int | None = None) -> None:
    """Add ``rows`` to the hour's tallies in the caller's transaction, in one statement.

    Rows arrive sorted by key, so two batches raising the same counters lock them in the
    same order (no deadlock); it runs last, so a counter's row lock is held only until
    the commit that follows. The writing thread's shard spreads one sender's concurrent
    single-event requests over several rows, so they do not wait on each other's commits.
    """
    if not rows:
        return
    shard = _tally_shard() if shard is None else shard
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(TALLY_COLUMNS)) + ")"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO ingest_ingesttally ({', '.join(TALLY_COLUMNS)}) "  # noqa: S608
            f"VALUES {placeholders} ON CONFLICT ({', '.join(TALLY_COLUMNS[:-1])}) "
            "DO UPDATE SET count = ingest_ingesttally.count + EXCLUDED.count",
            [value for row in rows for value in (*row.key(), shard, row.count)],
        )


def _tally_shard() -> int:
    # Stable per thread: one thread's batches raise one row; threads and processes spread.
    return hash((os.getpid(), threading.get_ident())) % TALLY_SHARDS


def batch_store(
    events: Sequence[PreparedEvent], context: IngestContext, tally: BatchTally | None = None
) -> set[tuple]:
    """Store a prepared batch in one transaction; return the keys that were new.

    With ``tally``, the batch's outcome counters are raised in the same transaction: a
    batch is counted exactly when it is stored.

    A store that cannot be reached, or is too slow (the statement timeout), locked or
    deadlocked, raises RetryableError: the batch may succeed later. Anything else the
    database refuses (a data error, a constraint other than the dedupe key, a bug) is
    StoreRefusedError: retrying the same batch would fail the same way.
    """
    try:
        with transaction.atomic():
            inserted = persist_events(
                events, context, statement_timeout_ms=telemetry_settings.DB_STATEMENT_TIMEOUT_MS
            )
            if tally is not None:
                tally_upsert(tally.rows(events, inserted))
            return inserted
    except (OperationalError, InterfaceError) as exc:
        raise RetryableError("the event store is unavailable") from exc
    except InternalError as exc:
        raise RetryableError("the event store failed; retry later") from exc
    except DatabaseError as exc:
        logger.error("the event store refused a batch: %s", type(exc.__cause__ or exc).__name__)
        raise StoreRefusedError("the event store refused the batch") from exc


def _statement_timeout(milliseconds: int) -> None:
    # A slow or locked store must answer 503 quickly rather than hold the client.
    with connection.cursor() as cursor:
        cursor.execute(STATEMENT_TIMEOUT_SQL, [f"{milliseconds}ms"])


def _chain_lock_key(source: str, day: date) -> int:
    return advisory_key("audit-chain", source, day.isoformat())


def audit_events_append(events: Sequence[PreparedEvent], context: IngestContext) -> set[tuple]:
    """Append audit events to their (source, day) chains and store them; return new keys.

    Per chain, under a transaction-scoped advisory lock: duplicates are set aside first
    (a duplicate must not take a link), then each new event is linked to its
    predecessor and the chain head moves on, in the caller's transaction.
    """
    key_id = telemetry_settings.HASH_KEY_ID
    key = telemetry_settings.HASH_KEYS[key_id]
    groups: dict[tuple[str, date], list[PreparedEvent]] = defaultdict(list)
    for event in events:
        groups[(event.source, event.occurred_at.astimezone(UTC).date())].append(event)
    inserted: set[tuple] = set()
    for (source, day), group in sorted(groups.items()):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_chain_lock_key(source, day)])
            # One probe per event by its whole unique key, bounded to the chain's day (only
            # that day's partition is planned). Not `event_id = ANY(...)`: with statistics
            # taken while the day was young the planner scanned the source's rows of the day
            # instead (60 ms at 100k rows, growing with the day, under the chain lock).
            cursor.execute(DUPLICATE_PROBE_SQL, [
                [event.event_id for event in group],
                [event.occurred_at for event in group],
                source,
                datetime.combine(day, time.min, tzinfo=UTC),
                datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC),
            ])
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
              AND head.last_seq - coalesce(stored.kept, 0) - (
                  -- erased rows keep their place as tombstones: not purged links
                  SELECT count(*) FROM ingest_auditchaintombstone tombstone
                  WHERE tombstone.source = head.source AND tombstone.day = head.day
              ) > head.rows_purged
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
        stored = cursor.fetchone()[0]
    # Erased rows keep their place as tombstones (the erasure's record, not the purge's).
    return stored + AuditChainTombstone.objects.filter(source=head.source, day=head.day).count()
