"""Retention: day partitions per class, and the purge that drops or deletes expired events.

Layout: ``ingest_event`` is LIST-partitioned by class; each class partition is
RANGE-partitioned by ``occurred_at`` into day partitions (``ingest_event_<class>_pYYYYMMDD``)
plus a default partition that catches days with no partition yet. Maintenance creates
partitions ahead of time and splits days out of the default partition.

The purge, per class, under a PostgreSQL advisory lock: drops day partitions that are
wholly expired for every schema of the class and hold nothing held; elsewhere deletes
expired, unheld rows in bounded batches, each committed on its own, so a purge killed
midway leaves consistent data and the next run carries on.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

from django.db import connection, transaction
from django.utils import timezone

from governance.models import EventClass, LegalHold, RetentionOverride, SchemaRevision
from telemetry_platform.conf import telemetry_settings

from .partitions import PARENT_TABLE, class_partition_name

logger = logging.getLogger(__name__)

DAY = timedelta(days=1)
DAY_SUFFIX = re.compile(r"_p(\d{8})$")


def day_partition_name(event_class: str, day: date) -> str:
    return f"{class_partition_name(event_class)}_p{day:%Y%m%d}"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, dtime.min, tzinfo=UTC)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _attached_day_partitions(event_class: str) -> dict[date, str]:
    """Day partitions currently attached to the class partition, by day."""
    parent = class_partition_name(event_class)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            WHERE parent.relname = %s
            """,
            [parent],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = {}
    for name in names:
        match = DAY_SUFFIX.search(name)
        if match and name == f"{parent}_p{match.group(1)}":
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return days


def _detached_leftovers(event_class: str) -> list[str]:
    """Day tables of the class that are not attached (a purge stopped after detaching)."""
    prefix = f"{class_partition_name(event_class)}_p"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c
            WHERE c.relkind = 'r' AND c.relname LIKE %s
              AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
            """,
            [prefix.replace("_", r"\_") + "%"],
        )
        return [row[0] for row in cursor.fetchall() if DAY_SUFFIX.search(row[0])]


def day_partition_create(event_class: str, day: date) -> int:
    """Create the day partition, moving that day's rows out of the default partition.

    Return how many rows moved. Runs in one transaction; the default partition is
    locked against inserts for its duration so no row of that day can slip in.
    """
    parent = class_partition_name(event_class)
    default = f"{parent}_default"
    table = day_partition_name(event_class, day)
    start, end = _day_start(day), _day_start(day + DAY)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {_quote(default)} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if cursor.fetchone()[0]:
            return 0
        cursor.execute(f"CREATE TABLE {_quote(table)} (LIKE {PARENT_TABLE} INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {_quote(default)} "  # noqa: S608 (quoted identifiers)
            "WHERE occurred_at >= %s AND occurred_at < %s RETURNING *) "
            f"INSERT INTO {_quote(table)} SELECT * FROM moved",
            [start, end],
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {_quote(parent)} ATTACH PARTITION {_quote(table)} "
            "FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
    return moved


def partitions_maintain(
    *, event_class: str, days_ahead: int | None = None, now: datetime | None = None
) -> list[str]:
    """Create day partitions from today to ``days_ahead`` days on, and split the default.

    Return a line per partition created. Idempotent.
    """
    now = now or timezone.now()
    days_ahead = telemetry_settings.PARTITION_DAYS_AHEAD if days_ahead is None else days_ahead
    attached = _attached_day_partitions(event_class)
    wanted = {now.date() + timedelta(days=offset) for offset in range(days_ahead + 1)}
    default = f"{class_partition_name(event_class)}_default"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT (occurred_at AT TIME ZONE 'UTC')::date FROM {_quote(default)}"  # noqa: S608
        )
        wanted |= {row[0] for row in cursor.fetchall()}
    created = []
    for day in sorted(wanted - set(attached)):
        moved = day_partition_create(event_class, day)
        created.append(f"{day_partition_name(event_class, day)} ({moved} rows moved from default)")
    return created


# -- what is expired, what is held -----------------------------------------------------


@dataclass(frozen=True)
class RetentionRules:
    """Cutoffs for one class: the class's, and each overridden schema's revisions'."""

    event_class: str
    class_cutoff: datetime
    overrides: tuple[tuple[tuple[int, ...], datetime], ...]  # (revision ids, cutoff)
    holds: tuple[tuple[str, tuple], ...]  # (SQL predicate, params) per active hold

    @property
    def earliest_cutoff(self) -> datetime:
        """Before this, rows are expired whatever their schema."""
        return min([self.class_cutoff, *(cutoff for _, cutoff in self.overrides)])

    def expired_sql(self) -> tuple[str, list]:
        overridden = [rid for revisions, _ in self.overrides for rid in revisions]
        parts = ["(occurred_at < %s AND NOT (schema_revision_id = ANY(%s)))"]
        params: list = [self.class_cutoff, overridden]
        for revisions, cutoff in self.overrides:
            parts.append("(schema_revision_id = ANY(%s) AND occurred_at < %s)")
            params.extend([list(revisions), cutoff])
        return "(" + " OR ".join(parts) + ")", params

    def held_sql(self) -> tuple[str, list]:
        if not self.holds:
            return "FALSE", []
        params: list = []
        for _, hold_params in self.holds:
            params.extend(hold_params)
        return "(" + " OR ".join(sql for sql, _ in self.holds) + ")", params


def _hold_predicate(hold: LegalHold) -> tuple[str, tuple]:
    conditions, params = [], []
    if hold.event_class_id:
        conditions.append("event_class = %s")
        params.append(hold.event_class_id)
    if hold.schema_id:
        conditions.append(
            "schema_revision_id IN (SELECT id FROM governance_schemarevision WHERE schema_id = %s)"
        )
        params.append(hold.schema_id)
    if hold.actor_hashes:
        conditions.append("actor_hash = ANY(%s)")
        params.append(list(hold.actor_hashes))
    if hold.occurred_from:
        conditions.append("occurred_at >= %s")
        params.append(hold.occurred_from)
    if hold.occurred_to:
        conditions.append("occurred_at < %s")
        params.append(hold.occurred_to)
    return "(" + (" AND ".join(conditions) or "TRUE") + ")", tuple(params)


def legal_holds_active(*, now: datetime) -> list[LegalHold]:
    return [
        hold
        for hold in LegalHold.objects.filter(released_at__isnull=True)
        if hold.expires_at is None or hold.expires_at > now
    ]


def retention_rules_for(
    event_class: EventClass, *, now: datetime, retention_days: int | None = None
) -> RetentionRules:
    """Gather the cutoffs and active holds that apply to ``event_class`` at ``now``."""
    days = event_class.retention_days if retention_days is None else retention_days
    overrides = []
    for override in RetentionOverride.objects.filter(schema__event_class=event_class):
        revisions = tuple(
            SchemaRevision.objects.filter(schema=override.schema).values_list("id", flat=True)
        )
        overrides.append((revisions, now - timedelta(days=override.retention_days)))
    holds = tuple(
        _hold_predicate(hold)
        for hold in legal_holds_active(now=now)
        if hold.event_class_id in (None, event_class.name)
    )
    return RetentionRules(
        event_class=event_class.name,
        class_cutoff=now - timedelta(days=days),
        overrides=tuple(overrides),
        holds=holds,
    )


@dataclass(frozen=True)
class PurgePreview:
    event_class: str
    cutoff: datetime
    eligible: int
    kept_by_holds: int


def purge_preview(
    event_class: EventClass, *, retention_days: int | None = None, now: datetime | None = None
) -> PurgePreview:
    """Dry run: how many events a purge at ``now`` (with ``retention_days``) would remove."""
    now = now or timezone.now()
    rules = retention_rules_for(event_class, now=now, retention_days=retention_days)
    expired, expired_params = rules.expired_sql()
    held, held_params = rules.held_sql()
    table = _quote(class_partition_name(event_class.name))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE NOT {held}), count(*) FILTER (WHERE {held}) "  # noqa: S608
            f"FROM {table} WHERE {expired}",
            [*held_params, *held_params, *expired_params],
        )
        eligible, kept = cursor.fetchone()
    return PurgePreview(event_class.name, rules.class_cutoff, eligible, kept)


# -- the purge ---------------------------------------------------------------------------


def _lock_key(event_class: str) -> int:
    digest = hashlib.sha256(f"purge:{event_class}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def class_purge_lock(event_class: str) -> Iterator[bool]:
    """Session-level advisory lock: one purge per class at a time, freed if the process dies."""
    key = _lock_key(event_class)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


@dataclass
class PurgeProgress:
    partitions_dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0
    rows_kept_by_holds: int = 0


def _drop_expired_partitions(rules: RetentionRules, progress: PurgeProgress, save) -> None:
    held, held_params = rules.held_sql()
    for day, name in sorted(_attached_day_partitions(rules.event_class).items()):
        if _day_start(day + DAY) > rules.earliest_cutoff:
            continue  # not wholly expired for every schema of the class
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT EXISTS (SELECT 1 FROM {_quote(name)} WHERE {held})",  # noqa: S608
                held_params,
            )
            if cursor.fetchone()[0]:
                continue  # holds rows under a legal hold: delete around them instead
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {_quote(name)}")  # noqa: S608
            rows = cursor.fetchone()[0]
            parent = _quote(class_partition_name(rules.event_class))
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {_quote(name)}")
            cursor.execute(f"DROP TABLE {_quote(name)}")
        progress.partitions_dropped.append(name)
        progress.rows_deleted += rows
        _audit_chains_purged(rules.event_class, day_from=day, day_to=day)
        save(progress)


def _delete_expired_rows(rules: RetentionRules, progress: PurgeProgress, save) -> None:
    expired, expired_params = rules.expired_sql()
    held, held_params = rules.held_sql()
    table = _quote(class_partition_name(rules.event_class))
    batch_size = telemetry_settings.PURGE_BATCH_SIZE
    pause = telemetry_settings.PURGE_BATCH_PAUSE_SECONDS
    # The condition is repeated outside the subquery so PostgreSQL prunes partitions for
    # the DELETE too (with only "id IN (...)" it would visit every partition per batch).
    sql = (
        f"DELETE FROM {table} WHERE {expired} AND NOT {held} "  # noqa: S608 (quoted identifier)
        f"AND id = ANY(ARRAY(SELECT id FROM {table} WHERE {expired} AND NOT {held} LIMIT %s))"
    )
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            params = [*expired_params, *held_params]
            cursor.execute(sql, [*params, *params, batch_size])
            deleted = cursor.rowcount
        progress.rows_deleted += deleted
        save(progress)
        if deleted < batch_size:
            break
        if pause:
            time.sleep(pause)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE {expired} AND {held}",  # noqa: S608
            [*expired_params, *held_params],
        )
        progress.rows_kept_by_holds = cursor.fetchone()[0]
    if progress.rows_deleted:
        _audit_chains_purged(rules.event_class, day_from=None, day_to=rules.class_cutoff.date())


def _audit_chains_purged(event_class: str, *, day_from: date | None, day_to: date) -> None:
    """Mark the audit chains a purge touched: their final links stay, gaps are expected."""
    if event_class != "audit_event":
        return
    from audit.models import AuditChainHead

    heads = AuditChainHead.objects.filter(day__lte=day_to)
    if day_from is not None:
        heads = heads.filter(day__gte=day_from)
    heads.filter(purged_at__isnull=True).update(purged_at=timezone.now())


def purge_class(
    event_class: EventClass, *, now: datetime, triggered_by: str = "beat"
) -> tuple[PurgeProgress | None, RetentionRules | None, str]:
    """Purge one class. Return (progress, rules, status); status ``skipped`` if locked."""
    from .models import PurgeRun

    with class_purge_lock(event_class.name) as acquired:
        if not acquired:
            return None, None, PurgeRun.Status.SKIPPED
        rules = retention_rules_for(event_class, now=now)
        run = PurgeRun.objects.create(
            event_class=event_class, cutoff=rules.class_cutoff, triggered_by=triggered_by
        )
        # Under the lock no other purge of this class runs: older "running" runs died.
        PurgeRun.objects.filter(event_class=event_class, status=PurgeRun.Status.RUNNING).exclude(
            pk=run.pk
        ).update(status=PurgeRun.Status.INTERRUPTED, error="the worker stopped before finishing")
        progress = PurgeProgress()

        def save(progress: PurgeProgress) -> None:
            PurgeRun.objects.filter(pk=run.pk).update(
                partitions_dropped=progress.partitions_dropped,
                rows_deleted=progress.rows_deleted,
                rows_kept_by_holds=progress.rows_kept_by_holds,
            )

        started = time.monotonic()
        try:
            for leftover in _detached_leftovers(event_class.name):
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE {_quote(leftover)}")
                progress.partitions_dropped.append(leftover)
            _drop_expired_partitions(rules, progress, save)
            _delete_expired_rows(rules, progress, save)
        except Exception as exc:
            save(progress)
            PurgeRun.objects.filter(pk=run.pk).update(
                status=PurgeRun.Status.FAILED,
                error=type(exc).__name__,
                finished_at=timezone.now(),
                duration_seconds=time.monotonic() - started,
            )
            raise
        save(progress)
        PurgeRun.objects.filter(pk=run.pk).update(
            status=PurgeRun.Status.SUCCEEDED,
            finished_at=timezone.now(),
            duration_seconds=time.monotonic() - started,
        )
        return progress, rules, PurgeRun.Status.SUCCEEDED
