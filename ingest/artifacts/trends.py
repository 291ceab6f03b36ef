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

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 78, 18, 26, 52
# A budget far above the values would flatten the series: beyond this factor of the
# largest value it is drawn at the top edge and labelled "off scale".
BUDGET_SCALE_FACTOR = 2.0
# At most this many builds are labelled on the x-axis (first and last always).
MAX_X_LABELS = 5

_BYTE_STEPS = (("B", 1), ("kB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12))
_UNIT_TO_BYTES = {"bytes": 1, "B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
_UNIT_TO_SECONDS = {"ms": 1e-3, "s": 1}


def _number(value: float) -> str:
    """Three significant figures, never scientific notation ("384", "3.8", "0.012")."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if magnitude >= 0.01:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.4f}".rstrip("0").rstrip(".")


def human_value(value: float, unit: str) -> str:
    """``value`` in ``unit`` as people read it: 384000 bytes -> "384 kB", 2500 ms -> "2.5 s"."""
    if unit in _UNIT_TO_BYTES:
        size = value * _UNIT_TO_BYTES[unit]
        name, step = _BYTE_STEPS[0]
        for candidate, candidate_step in _BYTE_STEPS:
            if abs(size) >= candidate_step:
                name, step = candidate, candidate_step
        return f"{_number(size / step)} {name}"
    if unit in _UNIT_TO_SECONDS:
        seconds = value * _UNIT_TO_SECONDS[unit]
        if abs(seconds) >= 120:
            return f"{_number(seconds / 60)} min"
        if abs(seconds) >= 1:
            return f"{_number(seconds)} s"
        return f"{_number(seconds * 1000)} ms"
    if unit == "count" or not unit:
        for suffix, step in (("M", 1e6), ("k", 1e3)):
            if abs(value) >= step * 10:
                return f"{_number(value / step)}{suffix}"
        return _number(value)
    return f"{_number(value)} {unit}"


def _fmt(value: float) -> str:
    return _number(value)


def x_label_indexes(count: int, limit: int = MAX_X_LABELS) -> list[int]:
    """Evenly spread builds to label: the first, the last and some between."""
    if count <= limit:
        return list(range(count))
    step = (count - 1) / (limit - 1)
    return sorted({round(step * i) for i in range(limit)})


def trend_chart_svg(series: TrendSeries) -> str:
    """Render ``series`` as an inline SVG: the values over builds, the budget line (dashed),
    budget failures as red crosses (class ``failure``), passing builds as dots.

    Responsive (it scales to its grid cell); values in human units; several builds labelled
    with their dates; the budget's label sits above the plot, where no point can be.
    """
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

    def show(value: float) -> str:
        return human_value(value, series.unit)

    label = escape(f"{series.metric_path} ({series.source})", quote=True)
    parts = [
        f'<svg class="trend-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'aria-label="{label}">',
        f"<title>{label}</title>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" '
        'stroke="#888"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
        f'y2="{TOP + plot_h}" stroke="#888"/>',
    ]
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        tick = scale_bottom + (scale_top - scale_bottom) * fraction
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" '
            f'y2="{y(tick):.1f}" stroke="#eee"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{escape(show(tick))}</text>'
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
            f'stroke-width="1.5" stroke-dasharray="6 4"><title>budget '
            f"{escape(show(latest_budget))}{note}</title></polyline>"
        )
        # A legend above the plot area: never on top of a point or a failure cross.
        legend = f"budget {show(latest_budget)}{note}"
        swatch_end = LEFT + plot_w - len(legend) * 6.2 - 6  # ~6.2 px per 11 px character
        parts.append(
            f'<line x1="{swatch_end - 24:.1f}" y1="{TOP - 12}" x2="{swatch_end:.1f}" '
            f'y2="{TOP - 12}" stroke="#d9822b" stroke-width="1.5" stroke-dasharray="6 4"/>'
            f'<text class="budget-label" x="{LEFT + plot_w}" y="{TOP - 8}" '
            f'text-anchor="end" font-size="11" fill="#b3641a">{escape(legend)}</text>'
        )
    coords = " ".join(f"{x(i):.1f},{y(point.value):.1f}" for i, point in enumerate(points))
    parts.append(
        f'<polyline class="series" points="{coords}" fill="none" stroke="#2b6cb0" '
        'stroke-width="2"/>'
    )
    for index, point in enumerate(points):
        px, py = x(index), y(point.value)
        tip = escape(
            f"build {point.build_id} ({point.occurred_at:%Y-%m-%d}): {show(point.value)}"
            + (f" (budget {show(point.budget)})" if point.budget is not None else "")
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
    labelled = x_label_indexes(len(points))
    for index in labelled:
        anchor = "middle"
        if len(points) > 1 and index == 0:
            anchor = "start"
        elif len(points) > 1 and index == len(points) - 1:
            anchor = "end"
        base_y = TOP + plot_h
        parts.append(
            f'<line class="x-tick" x1="{x(index):.1f}" y1="{base_y}" x2="{x(index):.1f}" '
            f'y2="{base_y + 4}" stroke="#888"/>'
            f'<text class="build" x="{x(index):.1f}" y="{base_y + 16}" '
            f'text-anchor="{anchor}" font-size="11">{escape(points[index].build_id[:16])}</text>'
            f'<text class="build-date" x="{x(index):.1f}" y="{base_y + 30}" '
            f'text-anchor="{anchor}" font-size="10" fill="#555">'
            f"{points[index].occurred_at:%Y-%m-%d}</text>"
        )
    builds = f"{len(points)} build{'s' if len(points) != 1 else ''}"
    parts.append(
        f'<text class="caption" x="{LEFT}" y="{TOP - 8}" text-anchor="start" '
        f'font-size="11" fill="#555">{builds}, oldest to newest</text>'
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
