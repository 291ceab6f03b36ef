"""The last conformance checks, kept so the governance home can show their status.

``manage.py check_conformance`` records each run's verdict per file (counts and names of
files and metrics only) in a short Redis list. It is a status board, not evidence: a
failure to record never changes the check's exit code, and a flushed Redis only empties
the board until the next CI run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from telemetry_platform.redis_client import redis_client

from .conformance.report import ConformanceReport

KEY = "tgp:conformance:checks"
KEPT = 10
VERDICTS = {0: "ok", 1: "missing", 2: "error"}


@dataclass(frozen=True)
class FileStatus:
    """One checked file: ok, missing metrics, or unusable."""

    file: str
    status: str
    missing_metrics: int
    errors: int


@dataclass(frozen=True)
class ConformanceCheck:
    """One run of the check: when, its verdict and each file's status."""

    checked_at: datetime
    verdict: str
    exit_code: int
    checked: int
    files: tuple[FileStatus, ...]


def _file_statuses(report: ConformanceReport) -> list[dict]:
    missing: dict[str, int] = {}
    for finding in report.missing:
        missing[finding.file] = missing.get(finding.file, 0) + len(finding.metrics)
    errors: dict[str, int] = {}
    for error in report.errors:
        errors[error.file] = errors.get(error.file, 0) + 1
    names = list(dict.fromkeys([*report.files, *missing, *errors]))
    return [
        {
            "file": name,
            "status": "error" if errors.get(name) else "missing" if missing.get(name) else "ok",
            "missing_metrics": missing.get(name, 0),
            "errors": errors.get(name, 0),
        }
        for name in names
    ]


def conformance_check_record(report: ConformanceReport, *, now: datetime | None = None) -> bool:
    """Keep this run's verdict (newest first, the last ``KEPT``); False if Redis refused."""
    entry = {
        "checked_at": (now or datetime.now(UTC)).isoformat(),
        "exit_code": report.exit_code(),
        "checked": report.checked,
        "files": _file_statuses(report),
    }
    try:
        pipe = redis_client().pipeline()
        pipe.lpush(KEY, json.dumps(entry))
        pipe.ltrim(KEY, 0, KEPT - 1)
        pipe.execute()
    except redis.RedisError:
        return False
    return True


def conformance_checks_recent(limit: int = KEPT) -> list[ConformanceCheck]:
    """The recorded runs, newest first (empty when none was recorded or Redis is down)."""
    try:
        raw: Sequence[bytes] = redis_client().lrange(KEY, 0, limit - 1)
    except redis.RedisError:
        return []
    checks = []
    for item in raw:
        entry = json.loads(item)
        checks.append(
            ConformanceCheck(
                checked_at=datetime.fromisoformat(entry["checked_at"]),
                verdict=VERDICTS.get(entry["exit_code"], "error"),
                exit_code=entry["exit_code"],
                checked=entry["checked"],
                files=tuple(FileStatus(**status) for status in entry["files"]),
            )
        )
    return checks
