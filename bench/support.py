"""What the benchmarks share: the local PostgreSQL and Redis, manage.py, ports, the machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_SERVER = "postgres://root@127.0.0.1:5432"


def pg_admin(sql: str) -> None:
    """Run one statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def database_recreate(name: str) -> None:
    """An empty database ``name``, whatever was there (connections to it are ended)."""
    database_drop(name)
    pg_admin(f"CREATE DATABASE {name}")


def database_drop(name: str) -> None:
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def connect(database_url: str) -> Any:
    """An autocommit psycopg connection."""
    import psycopg

    return psycopg.connect(database_url, autocommit=True)


def redis_flush(redis_url: str) -> None:
    """Empty the Redis database of ``redis_url`` (the benchmark's own)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


def manage(*args: str, env: dict[str, str]) -> str:
    """Run ``manage.py ARGS`` with ``env``; its standard output, or RuntimeError with stderr."""
    completed = subprocess.run(  # noqa: S603 (fixed argv)
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pin_to_one_core() -> str:
    """Pin this process to one CPU (single-core measurements); say what was done."""
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to CPU {core}"
    return "not pinned (no sched_setaffinity)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def protobuf_version() -> str:
    from google.protobuf import __version__
    from google.protobuf.internal import api_implementation

    return f"{__version__} ({api_implementation.Type()})"
