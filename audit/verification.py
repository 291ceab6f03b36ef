"""Verification of the audit chains: every broken, missing or reordered link."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date

from django.db import connection

from .chain import GENESIS, canonical_content, link_valid
from .models import AuditChainHead


@dataclass(frozen=True)
class ChainProblem:
    source: str
    day: date
    seq: int | None
    kind: str  # altered | reordered | missing | truncated | unknown_chain
    detail: str

    def __str__(self) -> str:
        where = f" at link {self.seq}" if self.seq is not None else ""
        return f"{self.source} {self.day}{where}: {self.kind} ({self.detail})"


@dataclass
class VerificationReport:
    chains: int = 0
    links: int = 0
    purged_chains: int = 0
    problems: list[ChainProblem] | None = None

    def __post_init__(self) -> None:
        self.problems = self.problems or []


def _chain_rows(source: str, day: date) -> Iterator[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT chain_seq, chain_prev, chain_link, event_id, source, occurred_at, payload::text
            FROM ingest_event
            WHERE event_class = 'audit_event' AND source = %s
              AND occurred_at >= %s::date AND occurred_at < %s::date + 1
              AND chain_seq IS NOT NULL
            ORDER BY chain_seq
            """,
            [source, day, day],
        )
        yield from cursor.fetchall()


def _chains_since(since: date | None) -> set[tuple[str, date]]:
    heads = AuditChainHead.objects.all()
    if since:
        heads = heads.filter(day__gte=since)
    chains = set(heads.values_list("source", "day"))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT source, (occurred_at AT TIME ZONE 'UTC')::date FROM ingest_event
            WHERE event_class = 'audit_event' AND chain_seq IS NOT NULL
              AND (%s::date IS NULL OR occurred_at >= %s::date)
            """,
            [since, since],
        )
        chains |= set(cursor.fetchall())
    return chains


def verify_chain(
    source: str, day: date, keys: Mapping[str, str]
) -> tuple[int, list[ChainProblem], bool]:
    """Check one chain; return (links checked, problems, whether a purge touched it)."""
    import json

    head = AuditChainHead.objects.filter(source=source, day=day).first()
    purged = bool(head and head.purged_at)
    problems: list[ChainProblem] = []
    if head is None:
        problems.append(ChainProblem(source, day, None, "unknown_chain", "rows with no chain head"))
    expected_seq, expected_prev, links = 1, GENESIS, 0
    for seq, prev, link, event_id, row_source, occurred_at, payload in _chain_rows(source, day):
        links += 1
        content = canonical_content(
            event_id=event_id,
            source=row_source,
            occurred_at=occurred_at,
            payload=json.loads(payload),
        )
        if not link_valid(link, prev, content, keys=keys):
            problems.append(
                ChainProblem(source, day, seq, "altered", "content does not match its link")
            )
        if seq != expected_seq:
            if seq > expected_seq and not purged:
                problems.append(
                    ChainProblem(
                        source,
                        day,
                        expected_seq,
                        "missing",
                        f"links {expected_seq}..{seq - 1} absent",
                    )
                )
        elif prev != expected_prev and not purged:
            problems.append(
                ChainProblem(source, day, seq, "reordered", "does not follow the link before it")
            )
        expected_seq, expected_prev = seq + 1, link
    if head is not None and not purged and expected_seq - 1 != head.last_seq:
        problems.append(
            ChainProblem(
                source,
                day,
                expected_seq,
                "truncated",
                f"chain ends at {expected_seq - 1}, head says {head.last_seq}",
            )
        )
    return links, problems, purged


def audit_chains_verify(*, since: date | None, keys: Mapping[str, str]) -> VerificationReport:
    """Verify every chain (from ``since``): report each broken, missing or reordered link."""
    report = VerificationReport()
    for source, day in sorted(_chains_since(since), key=lambda chain: (chain[1], chain[0])):
        links, problems, purged = verify_chain(source, day, keys)
        report.chains += 1
        report.links += links
        report.purged_chains += purged
        report.problems.extend(problems)
    return report
