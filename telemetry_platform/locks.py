"""PostgreSQL advisory locks by name: one key derivation and one try-lock for every app."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


def advisory_key(*parts: object) -> int:
    """The 64-bit advisory lock key of a name (its parts joined by ':'), stable across processes."""
    name = ":".join(str(part) for part in parts)
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def session_lock_try(key: int) -> Iterator[bool]:
    """Try a session-level advisory lock (freed if the process dies); yield whether it was taken."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
