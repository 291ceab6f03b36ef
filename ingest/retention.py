"""Retention: day partitions per class, and the purge that drops or deletes expired events.

Layout: ``ingest_event`` is LIST-partitioned by class; each class partition is
RANGE-partitioned by ``occurred_at`` into day partitions (``ingest_event_<class>_pYYYYMMDD``)
plus a default partition that catches days with no partition yet. Maintenance creates
partitions ahead of time and splits days out of the default partition.

The purge, per class, under a PostgreSQL advisory lock: drops day partitions that are
wholly expired for every schema of the class and hold nothing held; elsewhere deletes
expired, unheld rows in bounded batches, each committed on its own, so a purge killed
midway leaves consistent data and the next run carries on.

Legal holds are read again by every batch (and every partition drop), in its own
transaction, and a batch commits only if no hold was placed while it ran: before
committing it takes ``LEGAL_HOLD_LOCK_KEY`` shared (try, never wait) and reads the hold ids
again. A hold's transaction holds that key exclusive, so a hold being placed makes the try
fail, one committed since the batch's first read shows in the second; either way the batch
is rolled back and redone under the new hold. From the try on, placing a hold waits for
the batch's commit. So no row a committed hold covers is ever removed, including the
rows of the batch that was in flight when the hold was placed.

Ingest is not made to wait (docs/decisions.md, "Purges that do not disturb ingest"): the
purge's one DDL statement that conflicts with inserts, ``DETACH PARTITION`` (ACCESS
EXCLUSIVE on the class partition every insert of the class goes through), runs under a
short ``lock_timeout`` in a transaction that does nothing else that is slow, and is retried
after a jittered pause when the lock is not granted in time, so it never queues in front of
inserts for longer than the timeout; the detached table is dropped in its own transaction,
which locks nothing ingest uses. Partitions dropped are wholly older than every cutoff of
the class, and ingest refuses events older than their retention, so no insert routes to
them. Batches and drops are paced: after each, the purge sleeps ``PURGE_PACING`` times as
long as it took (plus ``PURGE_BATCH_PAUSE_SECONDS``), so it takes at most a bounded share of
the database's CPU and WAL bandwidth.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import TypeVar

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from governance.models import EventClass, LegalHold, RetentionOverride, SchemaRevision
from governance.services.configuration import LEGAL_HOLD_LOCK_KEY
from telemetry_platform.conf import telemetry_settings
from telemetry_platform.db_router import primary_reads, read_connection
from telemetry_platform.locks import advisory_key, session_lock_try

from .metrics import PURGE_RUNS
from .models import PurgeRun
from .partitions import PARENT_TABLE, class_partition_name
from .pipeline.store import audit_chain_heads_purge_record

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
    as_of: datetime | None = None  # the purge's "now": holds expiring later are active
    hold_ids: frozenset[int] = frozenset()

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


def _class_holds(event_class: str, *, now: datetime) -> list[LegalHold]:
    return [
        hold for hold in legal_holds_active(now=now) if hold.event_class_id in (None, event_class)
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
    rules = RetentionRules(
        event_class=event_class.name,
        class_cutoff=now - timedelta(days=days),
        overrides=tuple(overrides),
        holds=(),
        as_of=now,
    )
    return rules_with_current_holds(rules)


def rules_with_current_holds(rules: RetentionRules) -> RetentionRules:
    """The same cutoffs with the holds active now (read in the caller's transaction)."""
    holds = _class_holds(rules.event_class, now=rules.as_of or timezone.now())
    return replace(
        rules,
        holds=tuple(_hold_predicate(hold) for hold in holds),
        hold_ids=frozenset(hold.pk for hold in holds),
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
    """Dry run: how many events a purge at ``now`` (with ``retention_days``) would remove.

    The holds and overrides are read on the primary (one just placed must count); the rows
    are counted on ``read_connection()``: the replica inside a ``replica_reads()`` block.
    """
    now = now or timezone.now()
    with primary_reads():
        rules = retention_rules_for(event_class, now=now, retention_days=retention_days)
    expired, expired_params = rules.expired_sql()
    held, held_params = rules.held_sql()
    table = _quote(class_partition_name(event_class.name))
    with read_connection().cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE NOT {held}), count(*) FILTER (WHERE {held}) "  # noqa: S608
            f"FROM {table} WHERE {expired}",
            [*held_params, *held_params, *expired_params],
        )
        eligible, kept = cursor.fetchone()
    return PurgePreview(event_class.name, rules.class_cutoff, eligible, kept)


# -- the purge ---------------------------------------------------------------------------


def _lock_key(event_class: str) -> int:
    return advisory_key("purge", event_class)


@contextmanager
def class_purge_lock(event_class: str) -> Iterator[bool]:
    """Session-level advisory lock: one purge per class at a time, freed if the process dies."""
    with session_lock_try(_lock_key(event_class)) as acquired:
        yield acquired


def _advisory_lock_held(key: int) -> bool:
    """Whether any session of this database holds advisory lock ``key`` (a read-only probe:
    trying the lock instead would make a purge starting meanwhile skip its run)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND objsubid = 1 AND classid::bigint = %s AND objid::bigint = %s)",
            [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
        )
        return cursor.fetchone()[0]


def class_purge_running(event_class: str) -> bool:
    """Whether a purge of ``event_class`` runs now (some session holds its class lock)."""
    return _advisory_lock_held(_lock_key(event_class))


INTERRUPTED_ERROR = "the worker stopped before finishing"


def purge_runs_interrupted_mark(*, event_class: str | None = None) -> int:
    """Mark the runs left 'running' by a purge that no longer runs as interrupted; return
    how many were marked.

    A purge holds its class lock (a session-level advisory lock) from before its run is
    created until after its final status is committed, and PostgreSQL frees the lock when
    the session ends, a killed worker's too. So a run still 'running' while no session
    holds its class's lock lost its worker. The update re-checks the status, so a run that
    finished since it was read keeps its final status.
    """
    running = PurgeRun.objects.filter(status=PurgeRun.Status.RUNNING)
    if event_class:
        running = running.filter(event_class=event_class)
    marked = 0
    for run in running.only("pk", "event_class"):
        if class_purge_running(run.event_class_id):
            continue
        updated = PurgeRun.objects.filter(pk=run.pk, status=PurgeRun.Status.RUNNING).update(
            status=PurgeRun.Status.INTERRUPTED, error=INTERRUPTED_ERROR, finished_at=timezone.now()
        )
        if updated:
            PURGE_RUNS.labels(run.event_class_id, PurgeRun.Status.INTERRUPTED).inc()
            marked += updated
    return marked


@dataclass
class PurgeProgress:
    partitions_dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0
    rows_kept_by_holds: int = 0


T = TypeVar("T")


class _HoldPlaced(Exception):
    """A legal hold was placed while a purge batch ran: roll the batch back and redo it."""


def _under_current_holds(
    rules: RetentionRules, work: Callable[[RetentionRules], T]
) -> tuple[T, RetentionRules]:
    """Run ``work`` in one transaction under the holds active at its start; commit only if
    no hold was placed meanwhile, else roll back and run it again (see the module doc).

    Return what ``work`` returned and the rules it ran under.
    """
    while True:
        try:
            with transaction.atomic():
                # READ COMMITTED: this statement sees every hold committed before it.
                current = rules_with_current_holds(rules)
                result = work(current)
                with connection.cursor() as cursor:
                    # Never wait here: the hold's transaction may wait on rows or tables
                    # this one has locked. Held to the commit, so a hold placed from now
                    # on waits for it.
                    cursor.execute(
                        "SELECT pg_try_advisory_xact_lock_shared(%s)", [LEGAL_HOLD_LOCK_KEY]
                    )
                    if not cursor.fetchone()[0]:
                        raise _HoldPlaced
                if rules_with_current_holds(rules).hold_ids - current.hold_ids:
                    raise _HoldPlaced
            return result, current
        except _HoldPlaced:
            logger.info("purge of %s: a hold was placed; redoing the batch", rules.event_class)
            # Wait (holding nothing else) until the hold's transaction has ended. A
            # transaction-level lock, freed by this commit: a session-level one would be
            # taken and released on different server sessions under transaction pooling.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LEGAL_HOLD_LOCK_KEY])


LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout


def _is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL's lock_timeout (lock_not_available), not another error."""
    return getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE


def _ddl_lock_timeout_set() -> None:
    """Bound how long the next lock request of this transaction may queue (SET LOCAL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)",
            [f"{telemetry_settings.PURGE_LOCK_TIMEOUT_MS}ms"],
        )


class _DdlGaveUp(Exception):
    """The DDL's lock was refused on every attempt: leave this step for the batched delete."""


def ddl_with_retry(step: Callable[[], T], *, what: str) -> T:
    """Run ``step`` (one transaction that sets a lock_timeout before its DDL) until its lock
    is granted; raise ``_DdlGaveUp`` after ``PURGE_DDL_ATTEMPTS`` refusals.

    A DDL lock request waiting in PostgreSQL's lock queue makes every later insert of the
    table wait behind it; giving up after ``PURGE_LOCK_TIMEOUT_MS`` and asking again after a
    jittered pause lets the inserts through in between.
    """
    attempts = telemetry_settings.PURGE_DDL_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except OperationalError as exc:
            if not _is_lock_timeout(exc):
                raise
            logger.info("purge: %s waited past lock_timeout (attempt %d)", what, attempt)
            time.sleep(min(0.02 * 2 ** min(attempt, 6), 1.0) * random.uniform(0.5, 1.0))  # noqa: S311
    raise _DdlGaveUp(what)


def _detach_partition_unless_held(rules: RetentionRules, name: str) -> int | None:
    """Detach the day partition ``name`` (the caller's transaction commits it); None (and
    nothing done) if it holds a row under a hold of ``rules``. Return the rows it held.

    The reads come first: from DETACH on, the class partition is locked against inserts
    until the commit, which follows at once.
    """
    held, held_params = rules.held_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {_quote(name)} WHERE {held})",  # noqa: S608
            held_params,
        )
        if cursor.fetchone()[0]:
            return None  # holds rows under a legal hold: delete around them instead
        cursor.execute(f"SELECT count(*) FROM {_quote(name)}")  # noqa: S608
        rows = cursor.fetchone()[0]
        _ddl_lock_timeout_set()
        parent = _quote(class_partition_name(rules.event_class))
        cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {_quote(name)}")
    return rows


def _detached_table_drop(name: str) -> None:
    """Drop a detached day table: no insert or query of the store reaches it any more."""
    with transaction.atomic(), connection.cursor() as cursor:
        _ddl_lock_timeout_set()
        cursor.execute(f"DROP TABLE IF EXISTS {_quote(name)}")


def _paced(started: float) -> None:
    """Sleep after a purge step so the purge uses a bounded share of the database (see the
    module doc): ``PURGE_PACING`` x the step's duration plus ``PURGE_BATCH_PAUSE_SECONDS``."""
    pause = telemetry_settings.PURGE_BATCH_PAUSE_SECONDS
    pause += min(telemetry_settings.PURGE_PACING * (time.monotonic() - started), 5.0)
    if pause > 0:
        time.sleep(pause)


def _drop_expired_partitions(rules: RetentionRules, progress: PurgeProgress, save) -> None:
    for day, name in sorted(_attached_day_partitions(rules.event_class).items()):
        if _day_start(day + DAY) > rules.earliest_cutoff:
            continue  # not wholly expired for every schema of the class
        started = time.monotonic()
        try:
            rows, _ = ddl_with_retry(
                lambda name=name: _under_current_holds(
                    rules, lambda current: _detach_partition_unless_held(current, name)
                ),
                what=f"DETACH {name}",
            )
        except _DdlGaveUp:
            logger.warning("purge: %s stays attached; its rows go by batched delete", name)
            continue
        if rows is None:
            continue
        progress.partitions_dropped.append(name)
        progress.rows_deleted += rows
        save(progress)
        try:
            ddl_with_retry(lambda name=name: _detached_table_drop(name), what=f"DROP {name}")
        except _DdlGaveUp:
            logger.warning("purge: detached %s is dropped by the next run", name)
        _audit_chains_purged(rules.event_class, day_from=day, day_to=day)
        _paced(started)


Position = tuple[datetime, int]  # (occurred_at, id): where the batched delete has got to


def _delete_batch(
    rules: RetentionRules, batch_size: int, after: Position | None
) -> tuple[int, Position | None]:
    """Delete up to ``batch_size`` expired rows no hold of ``rules`` covers, the first ones
    after ``after`` in (occurred_at, id) order; return how many and the last one deleted.

    Starting after the previous batch keeps each batch's scan short: rows a hold keeps
    (or newer ones) are passed over once, not by every batch again. A row left behind (a
    hold released meanwhile) is deleted by the next run.
    """
    expired, expired_params = rules.expired_sql()
    held, held_params = rules.held_sql()
    table = _quote(class_partition_name(rules.event_class))
    keyset, keyset_params = "", []
    if after is not None:
        # A range on the primary key's second column: each index scan starts at ``after``.
        keyset = " AND occurred_at >= %s AND (occurred_at > %s OR id > %s)"
        keyset_params = [after[0], after[0], after[1]]
    # The condition is repeated outside the subquery so PostgreSQL prunes partitions for
    # the DELETE too (with only "id IN (...)" it would visit every partition per batch).
    sql = (
        f"DELETE FROM {table} WHERE {expired} AND NOT {held} "  # noqa: S608 (quoted identifier)
        f"AND id = ANY(ARRAY(SELECT id FROM {table} WHERE event_class = %s AND {expired} "
        f"AND NOT {held}{keyset} ORDER BY occurred_at, id LIMIT %s)) RETURNING occurred_at, id"
    )
    params = [*expired_params, *held_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, rules.event_class, *params, *keyset_params, batch_size])
        rows = cursor.fetchall()
    return len(rows), (max(rows) if rows else after)


def _delete_expired_rows(rules: RetentionRules, progress: PurgeProgress, save) -> None:
    batch_size = telemetry_settings.PURGE_BATCH_SIZE
    after: Position | None = None
    while True:
        started = time.monotonic()
        (deleted, after), rules = _under_current_holds(
            rules, lambda current, after=after: _delete_batch(current, batch_size, after)
        )
        progress.rows_deleted += deleted
        save(progress)
        if deleted < batch_size:
            break
        _paced(started)
    rules = rules_with_current_holds(rules)
    expired, expired_params = rules.expired_sql()
    held, held_params = rules.held_sql()
    table = _quote(class_partition_name(rules.event_class))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE {expired} AND {held}",  # noqa: S608
            [*expired_params, *held_params],
        )
        progress.rows_kept_by_holds = cursor.fetchone()[0]
    if progress.rows_deleted:
        _audit_chains_purged(rules.event_class, day_from=None, day_to=rules.class_cutoff.date())


def _audit_chains_purged(event_class: str, *, day_from: date | None, day_to: date) -> None:
    """Record on the audit chain heads a purge touched how many links it removed."""
    if event_class != "audit_event":
        return
    if day_from is None:
        # A schema override shorter than the class retention deletes rows of later days too.
        overrides = RetentionOverride.objects.filter(schema__event_class_id=event_class)
        for days in overrides.values_list("retention_days", flat=True):
            day_to = max(day_to, (timezone.now() - timedelta(days=days)).date())
    audit_chain_heads_purge_record(day_from=day_from, day_to=day_to)


def purge_class(
    event_class: EventClass, *, now: datetime, triggered_by: str = "beat"
) -> tuple[PurgeProgress | None, RetentionRules | None, str]:
    """Purge one class. Return (progress, rules, status); status ``skipped`` if locked."""
    with class_purge_lock(event_class.name) as acquired:
        if not acquired:
            return None, None, PurgeRun.Status.SKIPPED
        rules = retention_rules_for(event_class, now=now)
        run = PurgeRun.objects.create(
            event_class=event_class, cutoff=rules.class_cutoff, triggered_by=triggered_by
        )
        # Under the lock no other purge of this class runs: older "running" runs died.
        died = PurgeRun.objects.filter(event_class=event_class, status=PurgeRun.Status.RUNNING)
        died = died.exclude(pk=run.pk).update(
            status=PurgeRun.Status.INTERRUPTED, error=INTERRUPTED_ERROR, finished_at=timezone.now()
        )
        if died:
            PURGE_RUNS.labels(event_class.name, PurgeRun.Status.INTERRUPTED).inc(died)
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
                _detached_table_drop(leftover)
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
