"""Partitions of the event store: one LIST partition per event class, ranged by time inside."""

from __future__ import annotations

from django.db import connection

from governance.models import identifier_validator

PARENT_TABLE = "ingest_event"


def class_partition_name(event_class: str) -> str:
    """Return the table name of an event class's partition."""
    identifier_validator(event_class)
    return f"{PARENT_TABLE}_{event_class}"


# Indexes some classes need beyond the shared ones: audit search filters on payload fields.
# Created on the class partition, PostgreSQL propagates them to every day partition.
CLASS_INDEXES: dict[str, tuple[tuple[str, str], ...]] = {
    "audit_event": (
        ("recent", "(occurred_at DESC, id DESC)"),
        ("name", "((payload->>'event_name') text_pattern_ops, occurred_at DESC)"),
        ("outcome", "((payload->>'outcome'), occurred_at DESC)"),
        ("source", "(source, occurred_at DESC)"),
        ("actor", "(actor_hash, occurred_at DESC) WHERE actor_hash <> ''"),
        ("session", "((payload->>'session_id')) WHERE payload ? 'session_id'"),
        ("org", "((payload->>'org_id'), occurred_at DESC) WHERE payload ? 'org_id'"),
        ("device", "((payload->>'device_id')) WHERE payload ? 'device_id'"),
        (
            "text",
            "USING gin (jsonb_to_tsvector('simple', coalesce(payload->'attributes', '{}'), "
            "'[\"string\"]'))",
        ),
        ("chain", "(source, chain_seq) WHERE chain_seq IS NOT NULL"),
    ),
}


def class_indexes_ensure(event_class: str) -> None:
    """Create the class's own indexes if missing (idempotent)."""
    table = class_partition_name(event_class)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for suffix, definition in CLASS_INDEXES.get(event_class, ()):
            name = f"{table}_{suffix}_idx"[:63]
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} {definition}"
            )


def event_class_partition_ensure(event_class: str) -> bool:
    """Create the class's partition (and its default time partition) if missing.

    Return True when it was created. Each class partition is itself partitioned by
    RANGE (occurred_at); the default sub-partition catches times with no range
    partition, so ingest never fails for want of a partition.
    """
    table = class_partition_name(event_class)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if cursor.fetchone()[0]:
            class_indexes_ensure(event_class)
            return False
        cursor.execute(
            f"CREATE TABLE {quote(table)} PARTITION OF {PARENT_TABLE} "
            "FOR VALUES IN (%s) PARTITION BY RANGE (occurred_at)",
            [event_class],
        )
        cursor.execute(
            f"CREATE TABLE {quote(table + '_default')} PARTITION OF {quote(table)} DEFAULT"
        )
    class_indexes_ensure(event_class)
    return True
