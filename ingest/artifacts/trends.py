"""Performance trends (pure): series per metric path, regressions, and their SVG charts."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

# A regression needs at least this many earlier builds (or the whole window, if smaller).
MIN_BASELINE_BUILDS = 3


@dataclass(frozen=True)
class TrendPoint:
    """One build's value of one metric path."""

    build_id: str
    occurred_at: datetime
    value: float
    budget: float | None
    passed: bool


@dataclass(frozen=True)
class TrendSeries:
    source: str
    metric_path: str
    unit: str
    points: tuple[TrendPoint, ...]  # oldest first

    @property
    def latest(self) -> TrendPoint:
        return self.points[-1]

    @property
    def failures(self) -> int:
        return sum(not point.passed for point in self.points)


@dataclass(frozen=True)
class Regression:
    """The latest build is worse than the median of the builds before it."""

    series: TrendSeries
    baseline_median: float
    baseline_builds: int
    change_percent: float | None  # None: the baseline median is 0

    @property
    def within_budget(self) -> bool:
        return self.series.latest.passed


def regression_find(
    series: TrendSeries, *, baseline_builds: int, threshold_percent: float
) -> Regression | None:
    """Return a regression if the latest value exceeds the median of the previous
    ``baseline_builds`` builds by more than ``threshold_percent`` (higher is worse: latency,
    sizes, errors). A zero median regresses on any positive value.
    """
    if baseline_builds < 1:
        return None
    previous = [point.value for point in series.points[:-1]][-baseline_builds:]
    if len(previous) < min(MIN_BASELINE_BUILDS, baseline_builds):
        return None
    median = statistics.median(previous)
    latest = series.latest.value
    if median == 0:
        if latest > 0:
            return Regression(series, median, len(previous), None)
        return None
    change = (latest - median) / abs(median) * 100
    if change > threshold_percent:
        return Regression(series, median, len(previous), change)
    return None


# -- SVG ------------------------------------------------------------------------------

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 18, 40
# A budget far above the values would flatten the series: beyond this factor of the
# largest value it is drawn at the top edge and labelled "off scale".
BUDGET_SCALE_FACTOR = 2.0


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def trend_chart_svg(series: TrendSeries) -> str:
    """Render ``series`` as an inline SVG: the values over builds, the budget line (dashed),
    budget failures as red crosses (class ``failure``), passing builds as dots."""
    points = series.points
    values = [point.value for point in points]
    budgets = [point.budget for point in points if point.budget is not None]
    top_value = max([*values, 0.0])
    off_scale = bool(budgets) and max(budgets) > max(top_value, 1e-12) * BUDGET_SCALE_FACTOR
    scale_top = max(top_value, *(budgets if budgets and not off_scale else [0.0]))
    scale_top = scale_top * 1.1 if scale_top > 0 else 1.0
    scale_bottom = min(0.0, *values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + (plot_w / 2 if len(points) == 1 else plot_w * index / (len(points) - 1))

    def y(value: float) -> float:
        value = min(value, scale_top)
        return TOP + plot_h * (1 - (value - scale_bottom) / (scale_top - scale_bottom))

    unit = f" {series.unit}" if series.unit else ""
    label = escape(f"{series.metric_path} ({series.source})", quote=True)
    parts = [
        f'<svg class="trend-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" aria-label="{label}">',
        f"<title>{label}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" '
        'stroke="#888"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
        f'y2="{TOP + plot_h}" stroke="#888"/>',
    ]
    for fraction in (0, 0.5, 1):
        tick = scale_bottom + (scale_top - scale_bottom) * fraction
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{escape(_fmt(tick))}{escape(unit)}</text>'
        )
    if budgets:
        budget_points = [
            (x(index), y(point.budget))
            for index, point in enumerate(points)
            if point.budget is not None
        ]
        if len(budget_points) == 1:
            by = budget_points[0][1]
            budget_points = [(LEFT, by), (LEFT + plot_w, by)]
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in budget_points)
        latest_budget = budgets[-1]
        note = " (off scale)" if off_scale else ""
        parts.append(
            f'<polyline class="budget-line" points="{coords}" fill="none" stroke="#d9822b" '
            f'stroke-width="1.5" stroke-dasharray="6 4"><title>budget {escape(_fmt(latest_budget))}'
            f"{escape(unit)}{note}</title></polyline>"
        )
        parts.append(
            f'<text class="budget-label" x="{LEFT + plot_w}" y="{budget_points[-1][1] - 4:.1f}" '
            f'text-anchor="end" font-size="11" fill="#d9822b">budget '
            f"{escape(_fmt(latest_budget))}{escape(unit)}{note}</text>"
        )
    coords = " ".join(f"{x(i):.1f},{y(point.value):.1f}" for i, point in enumerate(points))
    parts.append(
        f'<polyline class="series" points="{coords}" fill="none" stroke="#2b6cb0" '
        'stroke-width="2"/>'
    )
    for index, point in enumerate(points):
        px, py = x(index), y(point.value)
        tip = escape(
            f"build {point.build_id}: {_fmt(point.value)}{unit}"
            + (f" (budget {_fmt(point.budget)}{unit})" if point.budget is not None else "")
            + ("" if point.passed else " FAILED")
        )
        if point.passed:
            parts.append(
                f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" fill="#2b6cb0">'
                f"<title>{tip}</title></circle>"
            )
        else:
            parts.append(
                f'<g class="failure"><title>{tip}</title>'
                f'<line x1="{px - 5:.1f}" y1="{py - 5:.1f}" x2="{px + 5:.1f}" y2="{py + 5:.1f}" '
                'stroke="#c53030" stroke-width="2.5"/>'
                f'<line x1="{px - 5:.1f}" y1="{py + 5:.1f}" x2="{px + 5:.1f}" y2="{py - 5:.1f}" '
                'stroke="#c53030" stroke-width="2.5"/></g>'
            )
    for index in sorted({0, len(points) - 1}):
        anchor = "start" if index == 0 and len(points) > 1 else "end"
        if len(points) == 1:
            anchor = "middle"
        parts.append(
            f'<text class="build" x="{x(index):.1f}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="{anchor}" font-size="11">{escape(points[index].build_id)}</text>'
        )
    parts.append(
        f'<text class="caption" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" '
        f'font-size="11" fill="#555">{len(points)} build(s), oldest to newest</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def series_sort_key(series: TrendSeries) -> tuple[str, str]:
    return (series.source, series.metric_path)


def regressions_find(
    all_series: Sequence[TrendSeries], *, baseline_builds: int, threshold_percent: float
) -> list[Regression]:
    """Every series whose latest build regressed, largest change first."""
    found = [
        regression
        for series in all_series
        if (
            regression := regression_find(
                series, baseline_builds=baseline_builds, threshold_percent=threshold_percent
            )
        )
        is not None
    ]
    return sorted(
        found,
        key=lambda r: (r.change_percent is not None, -(r.change_percent or 0)),
    )
