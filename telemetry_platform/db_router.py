"""Read-only work on a streaming replica, within a lag bound, falling back to the primary.

Nothing reads from the replica unless it asks to: a view or selector opts in with
``replica_reads()`` (or the ``reads_from_replica`` decorator on a view method), so writes
and the paths that must read their own writes stay on the primary without a second
thought. Within the block, ORM reads go to the replica if it answered recently with a lag
under ``DATABASE_REPLICA_MAX_LAG_SECONDS``; otherwise, or when it cannot be reached, to the
primary. The lag is measured from ``pg_last_xact_replay_timestamp()`` and cached for
``DATABASE_REPLICA_CHECK_SECONDS`` per process, so a busy page costs no extra round trip.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpResponseBase, StreamingHttpResponse
from django.template.response import SimpleTemplateResponse

logger = logging.getLogger(__name__)

REPLICA_ALIAS = "replica"
FRESHNESS_HEADER = "X-Data-Freshness"
# Lag is zero when everything received is replayed and the replica still streams (an idle
# primary leaves the last replay timestamp old); otherwise the age of the last replayed
# commit. Not in recovery (a primary named as replica): zero.
LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
         AND NOT pg_is_wal_replay_paused()
         AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
    ELSE EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())
END
"""


@dataclass(frozen=True)
class ReadSource:
    """Where a block's reads went and how fresh that data is."""

    alias: str
    as_of: datetime
    lag_seconds: float | None = None  # None: the primary (current by definition)
    reason: str = ""  # why the primary served a replica read: "lagging", "unreachable"

    @property
    def on_replica(self) -> bool:
        """True when the replica served the reads."""
        return self.alias == REPLICA_ALIAS

    def header(self) -> str:
        """The ``X-Data-Freshness`` value: source, lag and as-of time (and a fallback's reason)."""
        parts = ["replica" if self.on_replica else "primary"]
        if self.lag_seconds is not None:
            parts.append(f"lag={self.lag_seconds:.1f}")
        parts.append(f"as-of={self.as_of.isoformat(timespec='seconds').replace('+00:00', 'Z')}")
        if self.reason:
            parts.append(f"fallback={self.reason}")
        return "; ".join(parts)

    def describe(self) -> str:
        """One line for a page: "data as of 12:00:01 UTC (replica, lag 0.4 s)"."""
        when = self.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if self.on_replica:
            return f"data as of {when} (replica, lag {self.lag_seconds:.1f} s)"
        if self.reason:
            return f"data as of {when} (primary: the replica is {self.reason})"
        return f"data as of {when} (primary)"


@dataclass(frozen=True)
class _Measurement:
    taken: float  # time.monotonic()
    lag_seconds: float | None  # None: unreachable or unknown


_reads_alias: ContextVar[str | None] = ContextVar("replica_reads_alias", default=None)
_measurement: _Measurement | None = None
_measure_lock = threading.Lock()


def replica_configured() -> bool:
    """True when ``DATABASE_REPLICA_URL`` names a replica."""
    return REPLICA_ALIAS in settings.DATABASES


def _measure_lag() -> float | None:
    """The replica's lag in seconds, or None when it cannot be reached or does not know."""
    connection = connections[REPLICA_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute(LAG_SQL)
            lag = cursor.fetchone()[0]
    except DatabaseError as exc:
        logger.warning("replica unreachable, reads go to the primary: %s", type(exc).__name__)
        with contextlib.suppress(DatabaseError):
            connection.close()
        return None
    return None if lag is None else max(0.0, float(lag))


def replica_lag() -> float | None:
    """The replica's lag (cached for DATABASE_REPLICA_CHECK_SECONDS); None if unreachable."""
    global _measurement
    now = time.monotonic()
    current = _measurement
    if current is not None and now - current.taken < settings.DATABASE_REPLICA_CHECK_SECONDS:
        return current.lag_seconds
    with _measure_lock:
        current = _measurement
        if current is None or now - current.taken >= settings.DATABASE_REPLICA_CHECK_SECONDS:
            current = _Measurement(time.monotonic(), _measure_lag())
            _measurement = current
    return current.lag_seconds


def forget_replica_lag() -> None:
    """Drop the cached measurement (tests, and after a failover)."""
    global _measurement
    _measurement = None


def read_connection() -> Any:
    """The connection raw-SQL reads should use: the block's choice, else the primary."""
    return connections[_reads_alias.get() or DEFAULT_DB_ALIAS]


def read_source() -> ReadSource:
    """Where read-only work should go now: the replica within the lag bound, else the primary."""
    now = datetime.now(UTC)
    if not replica_configured():
        return ReadSource(DEFAULT_DB_ALIAS, now)
    lag = replica_lag()
    if lag is None:
        return ReadSource(DEFAULT_DB_ALIAS, now, reason="unreachable")
    if lag > settings.DATABASE_REPLICA_MAX_LAG_SECONDS:
        return ReadSource(DEFAULT_DB_ALIAS, now, reason="lagging")
    return ReadSource(REPLICA_ALIAS, now - timedelta(seconds=lag), lag_seconds=lag)


@contextmanager
def replica_reads() -> Iterator[ReadSource]:
    """Send the block's ORM reads to the replica when it is fresh enough; yield the source.

    The choice is made once on entry, so every query of the block sees the same database.
    Writes inside the block still go to the primary (the router never writes elsewhere).
    """
    source = read_source()
    token = _reads_alias.set(source.alias)
    try:
        yield source
    finally:
        _reads_alias.reset(token)


@contextmanager
def primary_reads() -> Iterator[None]:
    """Inside a ``replica_reads()`` block, send this block's reads to the primary again: for
    what must read its own writes (the holds a dry run respects, say)."""
    token = _reads_alias.set(None)
    try:
        yield
    finally:
        _reads_alias.reset(token)


def _streamed_on(alias: str, chunks: Iterator[Any]) -> Iterator[Any]:
    # A streamed body is produced after the view returns: each chunk is read under the same
    # choice, and the choice never outlives the chunk (the server thread serves others).
    iterator = iter(chunks)
    while True:
        token = _reads_alias.set(alias)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _reads_alias.reset(token)
        yield chunk


def annotate_response(response: Any, source: ReadSource) -> Any:
    """Say on ``response`` how fresh its data is: the header, and ``data_freshness`` in a
    template's context; keep a streamed body's reads on the same source."""
    if isinstance(response, HttpResponseBase):
        response[FRESHNESS_HEADER] = source.header()
    if isinstance(response, StreamingHttpResponse):
        response.streaming_content = _streamed_on(source.alias, response.streaming_content)
    if isinstance(response, SimpleTemplateResponse) and isinstance(response.context_data, dict):
        response.context_data["data_freshness"] = source
    return response


def reads_from_replica(view: Callable) -> Callable:
    """Run a view (or view method) under ``replica_reads()`` and annotate its response.

    Put it on the handler (DRF ``get``/``list``), not on ``dispatch``: authentication and
    permission checks then stay on the primary.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with replica_reads() as source:
            response = view(*args, **kwargs)
        return annotate_response(response, source)

    return wrapper


class ReplicaRouter:
    """Django database router: reads in a ``replica_reads()`` block to its chosen database;
    every write, and every read outside such a block, to the primary."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        """Return the block's chosen alias, or None (the primary) outside a block."""
        return _reads_alias.get()

    def db_for_write(self, model: type, **hints: Any) -> str:
        """Return the primary: nothing is written through the replica or session aliases."""
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        """Return True: every alias holds the same database."""
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        """Return True for the primary only (the replica follows it; the session alias is it)."""
        return db == DEFAULT_DB_ALIAS
