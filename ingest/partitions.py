"""Partitions of the event store: one LIST partition per event class, ranged by time inside."""

from __future__ import annotations

from django.db import connection

from governance.models import identifier_validator

PARENT_TABLE = "ingest_event"


def class_partition_name(event_class: str) -> str:
    """Return the table name of an event class's partition."""
    identifier_validator(event_class)
    return f"{PARENT_TABLE}_{event_class}"


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
            return False
        cursor.execute(
            f"CREATE TABLE {quote(table)} PARTITION OF {PARENT_TABLE} "
            "FOR VALUES IN (%s) PARTITION BY RANGE (occurred_at)",
            [event_class],
        )
        cursor.execute(
            f"CREATE TABLE {quote(table + '_default')} PARTITION OF {quote(table)} DEFAULT"
        )
    return True
