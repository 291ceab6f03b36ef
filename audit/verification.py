"""Verification of the audit chains: every broken, missing or reordered link, every altered head."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.db import connection

from ingest.chain import (
    GENESIS,
    LINKED_COLUMNS,
    canonical_content,
    link_valid,
    link_version,
    row_content,
)
from ingest.models import AuditChainHead, AuditChainTombstone

from .digests import digest_files_read
from .problems import ChainProblem

ROW_COLUMNS = ("chain_prev", "chain_link", *LINKED_COLUMNS)


@dataclass
class VerificationReport:
    chains: int = 0
    links: int = 0
    purged_chains: int = 0
    digest_files: int = 0
    problems: list[ChainProblem] = field(default_factory=list)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _chain_rows(source: str, day: date) -> Iterator[dict[str, Any]]:
    columns = ", ".join(
        f"{column}::text" if column in ("payload", "redactions") else column
        for column in ROW_COLUMNS
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM ingest_event "  # noqa: S608 (constant column names)
            "WHERE event_class = 'audit_event' AND source = %s "
            "AND occurred_at >= %s AND occurred_at < %s AND chain_seq IS NOT NULL "
            "ORDER BY chain_seq, id",
            [source, *_day_bounds(day)],
        )
        rows = []
        for values in cursor.fetchall():
            row = dict(zip(ROW_COLUMNS, values, strict=True))
            row["payload"] = json.loads(row["payload"])
            row["redactions"] = json.loads(row["redactions"])
            rows.append(row)
    tombstones = [
        {
            "chain_seq": tombstone.chain_seq,
            "chain_prev": tombstone.chain_prev,
            "chain_link": tombstone.chain_link,
            "tombstone": tombstone,
        }
        for tombstone in AuditChainTombstone.objects.filter(source=source, day=day)
    ]
    if tombstones:
        # An erased row's tombstone stands at its position (a stable sort keeps rows first).
        rows = sorted([*rows, *tombstones], key=lambda row: row["chain_seq"])
    yield from rows


def _content(row: Mapping[str, Any]) -> bytes:
    if link_version(row["chain_link"] or "") == "v1":
        return canonical_content(
            event_id=row["event_id"],
            source=row["source"],
            occurred_at=row["occurred_at"],
            payload=row["payload"],
        )
    return row_content(row)


def _heads_since(since: date | None) -> dict[tuple[str, date], AuditChainHead]:
    heads = AuditChainHead.objects.all()
    if since:
        heads = heads.filter(day__gte=since)
    return {(head.source, head.day): head for head in heads}


def _row_chains_since(since: date | None) -> set[tuple[str, date]]:
    start = _day_bounds(since)[0] if since else None
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT source, (occurred_at AT TIME ZONE 'UTC')::date FROM ingest_event
            WHERE event_class = 'audit_event' AND chain_seq IS NOT NULL
              AND (%s::timestamptz IS NULL OR occurred_at >= %s)
            """,
            [start, start],
        )
        return set(cursor.fetchall())


def verify_chain(
    source: str,
    day: date,
    keys: Mapping[str, str],
    *,
    head: AuditChainHead | None,
    digest_keys: Mapping[str, str],
) -> tuple[int, list[ChainProblem], bool]:
    """Check one chain against its head; return (links checked, problems, purged or not).

    The head must match its keyed digest. Every stored row must match its link, and a
    row that directly follows another must link to it. Links absent from the chain must
    be exactly those a purge recorded on the head (none for an unpurged chain), and the
    row at the head's last position must carry the head's last link.
    """
    purged = bool(head and head.purged_at)
    problems: list[ChainProblem] = []

    def problem(seq: int | None, kind: str, detail: str) -> None:
        problems.append(ChainProblem(source, day, seq, kind, detail))

    if head is None:
        problem(None, "unknown_chain", "rows with no chain head")
    elif not head.seal_valid(keys=digest_keys):
        problem(None, "head_altered", "the chain head does not match its digest")
    expected_seq, expected_prev, links = 1, GENESIS, 0
    stored: set[int] = set()
    gaps: list[tuple[int, int]] = []
    last_row: dict[str, Any] | None = None
    for row in _chain_rows(source, day):
        links += 1
        seq = row["chain_seq"]
        tombstone = row.get("tombstone")
        if tombstone is not None:
            # Erased: the content is gone, the links stay (checked as any row's below).
            if not tombstone.seal_valid(keys=digest_keys):
                problem(seq, "tombstone_altered", "the tombstone does not match its digest")
        elif not link_valid(
            row["chain_link"] or "", row["chain_prev"] or "", _content(row), keys=keys
        ):
            problem(seq, "altered", "content does not match its link")
        if seq < expected_seq:
            problem(seq, "reordered", "a position taken twice")
        elif seq > expected_seq:
            gaps.append((expected_seq, seq - 1))
        elif row["chain_prev"] != expected_prev:
            problem(seq, "reordered", "does not follow the link before it")
        if head is not None and seq > head.last_seq:
            problem(seq, "beyond_head", f"the head ends at {head.last_seq}")
        stored.add(seq)
        expected_seq, expected_prev = max(expected_seq, seq + 1), row["chain_link"]
        last_row = row
    if head is None:
        return links, problems, purged
    absent = head.last_seq - len([seq for seq in stored if 1 <= seq <= head.last_seq])
    if not purged:
        for first, last in gaps:
            problem(first, "missing", f"links {first}..{last} absent")
        if expected_seq - 1 < head.last_seq:
            problem(
                expected_seq,
                "truncated",
                f"chain ends at {expected_seq - 1}, head says {head.last_seq}",
            )
    elif absent != head.rows_purged:
        problem(None, "missing", f"{absent} links absent, the purge removed {head.rows_purged}")
    if (
        last_row is not None
        and last_row["chain_seq"] == head.last_seq
        and last_row["chain_link"] != head.last_link
    ):
        problem(head.last_seq, "head_mismatch", "the last link differs from the head's")
    return links, problems, purged


def _digest_problems(
    directory: Path,
    heads: Mapping[tuple[str, date], AuditChainHead],
    digest_keys: Mapping[str, str],
    since: date | None,
) -> tuple[int, list[ChainProblem]]:
    """Compare the exported digest files with the chain heads the database holds now."""
    files, problems = digest_files_read(directory, keys=digest_keys)
    for digest_file in files:
        if since and digest_file.day < since:
            continue
        listed = {entry["source"]: entry for entry in digest_file.chains}
        for source, entry in sorted(listed.items()):
            head = heads.get((source, digest_file.day))
            exported = f"exported with {entry['last_seq']} links"
            if head is None:
                problems.append(
                    ChainProblem(
                        source, digest_file.day, None, "deleted_chain", f"{exported}, no head now"
                    )
                )
            elif head.last_seq < entry["last_seq"]:
                problems.append(
                    ChainProblem(
                        source,
                        digest_file.day,
                        head.last_seq,
                        "head_mismatch",
                        f"{exported}, the head has {head.last_seq}",
                    )
                )
            elif head.last_seq == entry["last_seq"] and head.last_link != entry["last_link"]:
                problems.append(
                    ChainProblem(
                        source,
                        digest_file.day,
                        head.last_seq,
                        "head_mismatch",
                        f"{exported}, the head's last link differs",
                    )
                )
            elif head.last_seq > entry["last_seq"] and not _row_links(
                source,
                digest_file.day,
                entry["last_seq"],
                entry["last_link"],
                purged=bool(head.purged_at),
            ):
                problems.append(
                    ChainProblem(
                        source,
                        digest_file.day,
                        entry["last_seq"],
                        "head_mismatch",
                        "the exported last link differs from the row there now",
                    )
                )
        for (source, day), _head in sorted(heads.items()):
            if day == digest_file.day and source not in listed:
                problems.append(
                    ChainProblem(
                        source,
                        day,
                        None,
                        "not_in_digest",
                        "a chain of an exported day missing from its digest file",
                    )
                )
    return len(files), problems


def _row_links(source: str, day: date, seq: int, link: str, *, purged: bool) -> bool:
    """Whether the row at ``seq`` carries ``link`` (an absent row only in a purged chain)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT chain_link FROM ingest_event WHERE event_class = 'audit_event' "
            "AND source = %s AND chain_seq = %s AND occurred_at >= %s AND occurred_at < %s",
            [source, seq, *_day_bounds(day)],
        )
        found = [row[0] for row in cursor.fetchall()]
    if not found:
        found = list(
            AuditChainTombstone.objects.filter(source=source, day=day, chain_seq=seq).values_list(
                "chain_link", flat=True
            )
        )
    if not found:
        return purged
    return found == [link]


def audit_chains_verify(
    *,
    since: date | None,
    keys: Mapping[str, str],
    digest_keys: Mapping[str, str],
    digests: Path | str | None = None,
) -> VerificationReport:
    """Verify every chain (from ``since``), and with ``digests`` the exported digest files.

    Report each broken, missing or reordered link, each head that does not match its
    digest or its chain, and, against the digest files, each chain deleted with its
    head, rolled back, or missing from its day's file.
    """
    report = VerificationReport()
    heads = _heads_since(since)
    chains = set(heads) | _row_chains_since(since)
    for source, day in sorted(chains, key=lambda chain: (chain[1], chain[0])):
        links, problems, purged = verify_chain(
            source, day, keys, head=heads.get((source, day)), digest_keys=digest_keys
        )
        report.chains += 1
        report.links += links
        report.purged_chains += purged
        report.problems.extend(problems)
    if digests is not None:
        report.digest_files, problems = _digest_problems(Path(digests), heads, digest_keys, since)
        report.problems.extend(problems)
    return report
