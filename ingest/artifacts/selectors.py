"""Reads of the artifact lanes: performance trends and regressions from stored samples."""

from __future__ import annotations

from collections import defaultdict

from ingest.models import Event
from telemetry_platform.conf import telemetry_settings

from .trends import Regression, TrendPoint, TrendSeries, regressions_find, series_sort_key

PERF_EVENT_CLASS = "performance_budget_sample"


def performance_source_list() -> list[str]:
    """Sources that have sent performance samples."""
    return list(
        Event.objects.filter(event_class_id=PERF_EVENT_CLASS)
        .order_by("source")
        .values_list("source", flat=True)
        .distinct()
    )


def performance_series_list(
    *, source: str | None = None, metric: str = "", max_builds: int | None = None
) -> list[TrendSeries]:
    """One series per (source, metric path) over the latest ``max_builds`` builds.

    A build signed off twice keeps its latest sample per path. ``metric`` filters paths by
    prefix (``boot.`` or ``boot.root.p95_ms``).
    """
    max_builds = max_builds or telemetry_settings.PERF_TREND_MAX_BUILDS
    events = Event.objects.filter(event_class_id=PERF_EVENT_CLASS)
    if source:
        events = events.filter(source=source)
    if metric:
        events = events.filter(payload__metric_path__startswith=metric)
    # Only the rows of the latest builds: one sign-off is one occurred-at.
    cutoff = (
        events.order_by("-occurred_at")
        .values_list("occurred_at", flat=True)
        .distinct()[max_builds - 1 : max_builds]
    )
    if cutoff:
        events = events.filter(occurred_at__gte=cutoff[0])
    rows = events.order_by("occurred_at", "id").values_list("source", "occurred_at", "payload")
    grouped: dict[tuple[str, str], dict[str, TrendPoint]] = defaultdict(dict)
    units: dict[tuple[str, str], str] = {}
    for row_source, occurred_at, payload in rows.iterator(chunk_size=2000):
        path = payload.get("metric_path")
        value = payload.get("value", 0.0)
        if not isinstance(path, str) or not isinstance(value, int | float):
            continue
        key = (row_source, path)
        build_id = str(payload.get("build_id", ""))
        points = grouped[key]
        # Re-inserting moves a re-run build to its latest position.
        points.pop(build_id, None)
        budget = payload.get("budget")
        points[build_id] = TrendPoint(
            build_id=build_id,
            occurred_at=occurred_at,
            value=float(value),
            budget=float(budget) if isinstance(budget, int | float) else None,
            passed=bool(payload.get("pass", False)),
        )
        units[key] = str(payload.get("unit", ""))
    series = [
        TrendSeries(
            source=key[0],
            metric_path=key[1],
            unit=units[key],
            points=tuple(list(points.values())[-max_builds:]),
        )
        for key, points in grouped.items()
    ]
    return sorted(series, key=series_sort_key)


def performance_regression_list(
    *, series: list[TrendSeries] | None = None, source: str | None = None
) -> list[Regression]:
    """Metric paths whose latest build is worse than the median of the previous
    TELEMETRY_PERF_REGRESSION_BASELINE_BUILDS builds by more than
    TELEMETRY_PERF_REGRESSION_THRESHOLD_PERCENT, within budget or not."""
    if series is None:
        series = performance_series_list(source=source)
    return regressions_find(
        series,
        baseline_builds=telemetry_settings.PERF_REGRESSION_BASELINE_BUILDS,
        threshold_percent=telemetry_settings.PERF_REGRESSION_THRESHOLD_PERCENT,
    )
