"""Daily audit digest files: every chain head of a closed UTC day, signed, kept outside the DB.

As CloudTrail delivers digest files, one file per day (``audit-digest-<day>.json``) lists
each chain of that day (source, last position, last link, head digest), names the
previous day's file by its SHA-256, and carries an HMAC under the digest key over the
rest. Someone who deletes a whole chain together with its head leaves no trace in the
database; the file still lists it. Files are written once, atomically, never rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from ingest.chain import keyed_digest, keyed_digest_valid
from ingest.models import AuditChainHead
from telemetry_platform.conf import telemetry_settings

from .problems import ChainProblem

FORMAT = "tgp-audit-digest/1"
FILE_PATTERN = re.compile(r"^audit-digest-(\d{4}-\d{2}-\d{2})\.json$")
# A day is exported once it has been over this long: audit events committed just after
# midnight for the day before still make it into that day's file.
CLOSE_GRACE = timedelta(minutes=30)
_EXPORT_LOCK = int.from_bytes(
    hashlib.sha256(b"audit-digest-export").digest()[:8], "big", signed=True
)


@dataclass(frozen=True)
class DigestFile:
    day: date
    path: Path
    sha256: str
    previous: dict[str, str] | None
    chains: list[dict[str, Any]]


def digest_file_name(day: date) -> str:
    return f"audit-digest-{day.isoformat()}.json"


def _signed_bytes(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _files_on_disk(directory: Path) -> list[tuple[date, Path]]:
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = FILE_PATTERN.match(path.name)
        if match:
            found.append((date.fromisoformat(match.group(1)), path))
    return sorted(found)


def _write_once(directory: Path, name: str, data: bytes) -> bytes:
    """Write ``data`` as ``name`` atomically unless it exists; return the file's bytes."""
    target = directory / name
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, target)  # fails if the file exists: never rewrite a day
        except FileExistsError:
            return target.read_bytes()
        except OSError:  # a file system without hard links: rename, having checked first
            if target.exists():
                return target.read_bytes()
            os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return data


def _day_document(day: date, previous: dict[str, str] | None, now: datetime) -> dict[str, Any]:
    chains = [
        {
            "source": head.source,
            "last_seq": head.last_seq,
            "last_link": head.last_link,
            "head_digest": head.digest,
        }
        for head in AuditChainHead.objects.filter(day=day).order_by("source")
    ]
    return {
        "format": FORMAT,
        "day": day.isoformat(),
        "exported_at": now.astimezone(UTC).isoformat(),
        "previous": previous,
        "chains": chains,
    }


def audit_digests_export(*, directory: Path | str, now: datetime | None = None) -> list[Path]:
    """Write the digest file of every closed UTC day not exported yet; return the new files.

    The first export starts at the earliest chain's day; later ones carry on after the
    newest file in ``directory``. One export at a time (advisory lock; a second returns
    at once with nothing written).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = now or timezone.now()
    last_closed = (now.astimezone(UTC) - CLOSE_GRACE).date() - timedelta(days=1)
    key_id = telemetry_settings.AUDIT_DIGEST_KEY_ID
    key = telemetry_settings.AUDIT_DIGEST_KEYS[key_id]
    written: list[Path] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_EXPORT_LOCK])
        if not cursor.fetchone()[0]:
            return written
        on_disk = _files_on_disk(directory)
        if on_disk:
            last_day, last_path = on_disk[-1]
            day = last_day + timedelta(days=1)
            previous = {
                "day": last_day.isoformat(),
                "sha256": hashlib.sha256(last_path.read_bytes()).hexdigest(),
            }
        else:
            first = AuditChainHead.objects.aggregate(first=Min("day"))["first"]
            day = min(first, last_closed) if first else last_closed
            previous = None
        while day <= last_closed:
            body = _day_document(day, previous, now)
            signature = keyed_digest(_signed_bytes(body), key_id=key_id, key=key)
            data = json.dumps({**body, "signature": signature}, indent=2, sort_keys=True) + "\n"
            stored = _write_once(directory, digest_file_name(day), data.encode("utf-8"))
            if stored == data.encode("utf-8"):
                written.append(directory / digest_file_name(day))
            previous = {"day": day.isoformat(), "sha256": hashlib.sha256(stored).hexdigest()}
            day += timedelta(days=1)
    return written


def digest_files_read(
    directory: Path | str, *, keys: Mapping[str, str]
) -> tuple[list[DigestFile], list[ChainProblem]]:
    """Read and check the digest files: each signature, and the chain from file to file.

    Return the files whose signature holds and the problems found (ChainProblem).
    """
    directory = Path(directory)
    files: list[DigestFile] = []
    problems: list[ChainProblem] = []

    def problem(day: date, detail: str) -> None:
        problems.append(ChainProblem("digest file", day, None, "digest_file", detail))

    if not directory.is_dir():
        problems.append(
            ChainProblem("digest file", date.min, None, "digest_file", "no such directory")
        )
        return files, problems
    before: DigestFile | None = None
    for day, path in _files_on_disk(directory):
        raw = path.read_bytes()
        try:
            document = json.loads(raw)
            signature = document.pop("signature")
            valid = (
                isinstance(signature, str)
                and document.get("format") == FORMAT
                and document.get("day") == day.isoformat()
                and keyed_digest_valid(signature, _signed_bytes(document), keys=keys)
            )
        except (ValueError, KeyError, AttributeError, TypeError):
            valid = False
        if not valid:
            problem(day, f"{path.name}: signature does not match (altered or forged)")
            before = None
            continue
        digest_file = DigestFile(
            day=day,
            path=path,
            sha256=hashlib.sha256(raw).hexdigest(),
            previous=document.get("previous"),
            chains=list(document.get("chains") or []),
        )
        if before is not None:
            expected = {"day": before.day.isoformat(), "sha256": before.sha256}
            if digest_file.previous != expected:
                named = (digest_file.previous or {}).get("day", "none")
                problem(day, f"{path.name}: does not follow the file before it (names {named})")
        elif files or digest_file.previous is not None:
            named = (digest_file.previous or {}).get("day", "none")
            problem(day, f"{path.name}: the file it follows ({named}) is missing or altered")
        files.append(digest_file)
        before = digest_file
    return files, problems
