"""Check that PostgreSQL and Redis answer (optionally creating the database); say how to fix it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dj_database_url
import psycopg
import redis
from psycopg import sql

DEFAULT_DATABASE_URL = "postgres://root@127.0.0.1:5432/telemetry_platform"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'


def _connect_kwargs(config: dict, dbname: str) -> dict:
    return {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": dbname,
        "connect_timeout": 5,
    }


def check_postgres(url: str, *, create: bool) -> str | None:
    """Return an error message, or None when the database is reachable (created if asked)."""
    config = dj_database_url.parse(url)
    where = f"{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}"
    name = config["NAME"]
    try:
        with psycopg.connect(**_connect_kwargs(config, "postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists and create:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"Created database {name!r} on {where}.")
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"PostgreSQL is not reachable at {where} ({first_line}).\n"
            f"  Start it with: {START_POSTGRES}\n"
            "  or point DATABASE_URL at a running server."
        )
    return None


def check_redis(url: str) -> str | None:
    """Return an error message, or None when Redis answers PING."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return (
            f"Redis is not reachable at {url} ({type(exc).__name__}).\n"
            f"  Start it with: {START_REDIS}\n"
            "  or point CELERY_BROKER_URL / REDIS_URL at a running server."
        )
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--create-database", action="store_true", help="create it if missing")
    args = parser.parse_args()
    errors = [
        check_postgres(
            os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, create=args.create_database
        ),
        check_redis(os.environ.get("CELERY_BROKER_URL") or DEFAULT_BROKER_URL),
    ]
    redis_url = os.environ.get("REDIS_URL")
    if redis_url and redis_url != os.environ.get("CELERY_BROKER_URL"):
        errors.append(check_redis(redis_url))
    errors = [error for error in errors if error]
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
