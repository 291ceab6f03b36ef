"""PostgreSQL advisory locks by name: one key derivation and one try-lock for every app."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

# Session-level locks live on a connection that keeps its server session: under PgBouncer's
# transaction pooling, the lock and its unlock could otherwise reach different sessions.
SESSION_ALIAS = "session"


def session_alias() -> str:
    """The database alias session-level locks are taken on (the session connection if set)."""
    return SESSION_ALIAS if SESSION_ALIAS in settings.DATABASES else DEFAULT_DB_ALIAS


def advisory_key(*parts: object) -> int:
    """The 64-bit advisory lock key of a name (its parts joined by ':'), stable across processes."""
    name = ":".join(str(part) for part in parts)
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def session_lock_try(key: int) -> Iterator[bool]:
    """Try a session-level advisory lock (freed if the process dies); yield whether it was taken.

    The lock is held by the session connection (``session_alias()``), which may differ from
    the one doing the locked work: the lock only excludes other holders of the same key.
    """
    connection = connections[session_alias()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
