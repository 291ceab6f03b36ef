"""Violation reports and ingest totals, read from the hourly tallies (never the event table)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Max, Sum

from .models import IngestTally
from .pipeline.tally import hour_of

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW = "24h"
REJECTED = "rejected"


@dataclass(frozen=True)
class ViolationRow:
    """One kind of rejection of one sender: how many in the window and the last hour."""

    source: str
    schema_name: str
    code: str
    field_path: str
    app_version: str
    count: int
    last_hour: int
    last_seen: datetime
    spark: tuple[int, ...]  # per hour (windows up to 24 h) or per day, oldest first

    def as_dict(self) -> dict:
        """The row as the violations API answers it."""
        return {
            "source": self.source,
            "schema": self.schema_name,
            "code": self.code,
            "field": self.field_path,
            "app_version": self.app_version,
            "count": self.count,
            "last_hour": self.last_hour,
            "last_seen_hour": self.last_seen.isoformat(),
            "series": list(self.spark),
        }


def window_buckets(window: str, now: datetime) -> tuple[datetime, str, list[datetime]]:
    """The window's first hour, its bucket size (``hour``/``day``) and the bucket starts."""
    span = WINDOWS[window]
    current = hour_of(now.astimezone(UTC))
    if span <= timedelta(hours=24):
        count = int(span / timedelta(hours=1))
        starts = [current - timedelta(hours=n) for n in range(count - 1, -1, -1)]
        return starts[0], "hour", starts
    today = current.replace(hour=0)
    days = span.days
    starts = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    return starts[0], "day", starts


def violation_list(
    *,
    window: str = DEFAULT_WINDOW,
    now: datetime | None = None,
    source: str = "",
    schema: str = "",
    code: str = "",
    field_path: str = "",
    sources: frozenset[str] | None = None,
    limit: int = 200,
) -> list[ViolationRow]:
    """Rejections in ``window`` per (source, schema, code, field path, app version), the
    most frequent first, each with its series; ``sources`` restricts who is seen."""
    now = now or datetime.now(UTC)
    start, unit, starts = window_buckets(window, now)
    rows = IngestTally.objects.filter(status=REJECTED, hour__gte=start)
    for name, value in (
        ("source", source),
        ("schema_name", schema),
        ("code", code),
        ("field_path", field_path),
    ):
        if value:
            rows = rows.filter(**{name: value})
    if sources is not None:
        rows = rows.filter(source__in=sorted(sources))
    group = ("source", "schema_name", "code", "field_path", "app_version")
    totals = list(
        rows.values(*group)
        .annotate(total=Sum("count"), last_seen=Max("hour"))
        .order_by("-total", *group)[:limit]
    )
    if not totals:
        return []
    series: dict[tuple, dict[datetime, int]] = defaultdict(dict)
    last_hour_start = hour_of(now.astimezone(UTC))
    last_hour: dict[tuple, int] = defaultdict(int)
    for row in rows.values(*group, "hour").annotate(total=Sum("count")).order_by():
        key = tuple(row[name] for name in group)
        moment = row["hour"].astimezone(UTC)
        if unit == "day":
            moment = moment.replace(hour=0)
        counts = series[key]
        counts[moment] = counts.get(moment, 0) + row["total"]
        if row["hour"] >= last_hour_start:
            last_hour[key] += row["total"]
    answer = []
    for row in totals:
        key = tuple(row[name] for name in group)
        counts = series[key]
        answer.append(
            ViolationRow(
                *key,
                count=row["total"],
                last_hour=last_hour[key],
                last_seen=row["last_seen"],
                spark=tuple(counts.get(moment, 0) for moment in starts),
            )
        )
    return answer


@dataclass(frozen=True)
class IngestTotals:
    """What one sender's events of one schema came to in a window."""

    source: str
    schema_name: str
    accepted: int
    duplicate: int
    rejected: int
    rejected_by_code: tuple[tuple[str, int], ...]


def ingest_totals(
    *, since: timedelta = timedelta(hours=24), now: datetime | None = None, limit: int = 50
) -> list[IngestTotals]:
    """Accepted, duplicate and rejected (by code) per source and schema since ``since``
    ago, the busiest first: one grouped read of the tallies."""
    now = now or datetime.now(UTC)
    start = hour_of(now.astimezone(UTC) - since) + timedelta(hours=1)
    grouped = (
        IngestTally.objects.filter(hour__gte=start)
        .values("source", "schema_name", "status", "code")
        .annotate(total=Sum("count"))
        .order_by()
    )
    cells: dict[tuple[str, str], dict] = {}
    for row in grouped:
        cell = cells.setdefault(
            (row["source"], row["schema_name"]),
            {"accepted": 0, "duplicate": 0, "rejected": 0, "codes": defaultdict(int)},
        )
        cell[row["status"]] = cell.get(row["status"], 0) + row["total"]
        if row["status"] == REJECTED:
            cell["codes"][row["code"]] += row["total"]
    totals = [
        IngestTotals(
            source,
            schema,
            cell["accepted"],
            cell["duplicate"],
            cell["rejected"],
            tuple(sorted(cell["codes"].items(), key=lambda item: (-item[1], item[0]))),
        )
        for (source, schema), cell in cells.items()
    ]
    totals.sort(key=lambda t: (-(t.accepted + t.duplicate + t.rejected), t.source, t.schema_name))
    return totals[:limit]
