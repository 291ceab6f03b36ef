"""Performance trends: regressions against the median of earlier builds, and the SVG chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.artifacts.trends import (
    TrendPoint,
    TrendSeries,
    human_value,
    regression_find,
    regressions_find,
    trend_chart_svg,
)

START = datetime(2026, 11, 1, tzinfo=UTC)


def series(values, *, budget=120.0, failed=(), path="boot.root.p95_ms") -> TrendSeries:
    points = tuple(
        TrendPoint(
            build_id=f"b{index}",
            occurred_at=START + timedelta(days=index),
            value=value,
            budget=budget,
            passed=index not in failed,
        )
        for index, value in enumerate(values)
    )
    return TrendSeries(source="web-shell", metric_path=path, unit="ms", points=points)


def test_latest_worse_than_the_median_by_more_than_the_threshold_regresses():
    """2.0 ms builds then 2.6 ms: +30 % over the median, a regression though within budget."""
    found = regression_find(
        series([2.0, 2.1, 1.9, 2.0, 2.6]), baseline_builds=5, threshold_percent=10
    )
    assert found is not None and found.within_budget
    assert found.baseline_median == 2.0 and round(found.change_percent) == 30


def test_changes_within_the_threshold_or_improvements_do_not_regress():
    """+5 % under a 10 % threshold, or a faster build, is no regression."""
    assert (
        regression_find(series([2.0, 2.0, 2.0, 2.1]), baseline_builds=5, threshold_percent=10)
        is None
    )
    assert (
        regression_find(series([2.0, 2.0, 2.0, 1.0]), baseline_builds=5, threshold_percent=10)
        is None
    )


def test_only_the_previous_n_builds_form_the_baseline():
    """Old slow builds outside the window do not hide a regression against recent ones."""
    values = [9.0, 9.0, 9.0, 2.0, 2.0, 2.0, 3.0]
    assert regression_find(series(values), baseline_builds=3, threshold_percent=10) is not None
    assert regression_find(series(values), baseline_builds=6, threshold_percent=10) is None


def test_too_few_builds_give_no_verdict():
    """With fewer than three earlier builds there is no baseline to compare against."""
    assert regression_find(series([1.0, 1.0, 5.0]), baseline_builds=5, threshold_percent=10) is None


def test_zero_baseline_regresses_on_any_positive_value():
    """Errors 0, 0, 0 then 1: a regression, reported without a percentage."""
    found = regression_find(
        series([0, 0, 0, 1], budget=0, failed={3}), baseline_builds=5, threshold_percent=10
    )
    assert found is not None and found.change_percent is None and not found.within_budget


def test_regressions_are_listed_largest_change_first():
    """Zero-baseline regressions come first, then by decreasing change."""
    small = series([2.0, 2.0, 2.0, 2.5], path="a")
    large = series([2.0, 2.0, 2.0, 4.0], path="b")
    zero = series([0, 0, 0, 1], path="c")
    found = regressions_find([small, large, zero], baseline_builds=5, threshold_percent=10)
    assert [r.series.metric_path for r in found] == ["c", "b", "a"]


def test_chart_draws_series_budget_line_and_failure_markers():
    """The SVG has the value polyline, the dashed budget line and one cross per failed build."""
    svg = trend_chart_svg(series([100.0, 110.0, 130.0, 125.0], failed={2, 3}))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="series"') == 1
    assert svg.count('class="budget-line"') == 1 and "stroke-dasharray" in svg
    assert svg.count('class="failure"') == 2 and svg.count('class="point"') == 2
    assert "budget 120 ms" in svg
    assert "build b2 (2026-11-03): 130 ms (budget 120 ms) FAILED" in svg


def test_values_are_shown_in_human_units_never_scientific_notation():
    assert human_value(384_000, "bytes") == "384 kB"
    assert human_value(3_800_000, "bytes") == "3.8 MB"
    assert human_value(512, "kB") == "512 kB"
    assert human_value(2048, "kB") == "2.05 MB"  # SI: 1 MB = 1,000 kB
    assert human_value(7.8, "ms") == "7.8 ms"
    assert human_value(2500, "ms") == "2.5 s"
    assert human_value(123, "s") == "2.05 min"
    assert human_value(0.25, "s") == "250 ms"
    assert human_value(45_000, "count") == "45k"
    svg = trend_chart_svg(
        TrendSeries(
            source="web-shell",
            metric_path="bundle.main_bytes",
            unit="bytes",
            points=series([380_000.0, 390_000.0, 400_000.0], budget=None).points,
        )
    )
    ticks = [t.split(">")[1].split("<")[0] for t in svg.split('class="tick"')[1:]]
    assert all("e+" not in tick for tick in ticks) and any(tick.endswith("kB") for tick in ticks)


def test_x_axis_labels_several_builds_with_their_dates():
    svg = trend_chart_svg(series([100.0 + i for i in range(12)]))
    labels = [t.split(">")[1].split("<")[0] for t in svg.split('class="build"')[1:]]
    assert labels[0] == "b0" and labels[-1] == "b11" and 3 <= len(labels) <= 5
    dates = [t.split(">")[1].split("<")[0] for t in svg.split('class="build-date"')[1:]]
    assert dates[0] == "2026-11-01" and dates[-1] == "2026-11-12"


def test_the_budget_label_sits_above_the_plot_clear_of_failure_crosses():
    from ingest.artifacts.trends import TOP

    svg = trend_chart_svg(series([100.0, 125.0, 130.0], failed={1, 2}))
    label_y = float(svg.split('class="budget-label"')[1].split('y="')[1].split('"')[0])
    assert label_y < TOP  # the plot (and every cross) starts at TOP
    crosses_y = [
        float(part.split('y1="')[1].split('"')[0]) for part in svg.split('<g class="failure">')[1:]
    ]
    assert all(y > label_y + 4 for y in crosses_y)


def test_budget_far_above_the_values_is_drawn_off_scale():
    """A budget 60x the values is labelled off scale instead of flattening the series."""
    svg = trend_chart_svg(series([2.0, 2.1], budget=120.0))
    assert "(off scale)" in svg


def test_chart_escapes_text():
    """Metric paths and build ids are escaped: an artifact cannot inject markup."""
    hostile = TrendSeries(
        source="<b>",
        metric_path='x"><script>alert(1)</script>',
        unit="ms",
        points=(TrendPoint("<i>", START, 1.0, None, True),),
    )
    svg = trend_chart_svg(hostile)
    assert "<script>" not in svg and "<i>" not in svg and "&lt;script&gt;" in svg
