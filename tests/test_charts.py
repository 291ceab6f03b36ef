"""Inline-SVG charts and human units (telemetry_platform/charts.py): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telemetry_platform.charts import (
    Segment,
    human_count,
    series_bars_svg,
    sparkline_svg,
    stacked_bars_svg,
)


def test_counts_read_as_people_write_them():
    """Thousands separators below 10,000, then k/M/G with one decimal, never 3.8e+05."""
    assert [human_count(n) for n in (0, 7, 1_204, 9_999)] == ["0", "7", "1,204", "9,999"]
    assert human_count(12_345) == "12.3k"
    assert human_count(380_000) == "380k"
    assert human_count(1_200_000) == "1.2M"
    assert human_count(3_000_000_000) == "3G"


def test_labels_are_escaped():
    """A source name with markup cannot inject into the page."""
    svg = stacked_bars_svg([("<script>x</script>", [Segment("accepted", 3, "#000")])])
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_sparkline_scales_to_its_peak_and_empty_is_empty():
    """The highest value touches the top (y=2), zero sits on the bottom line."""
    svg = sparkline_svg([0, 5, 10], width=100, height=24)
    assert 'points="0.0,22.0 50.0,12.0 100.0,2.0"' in svg
    assert sparkline_svg([]) == ""


def test_series_has_dated_labels_that_do_not_crowd():
    """24 hourly bars carry at most about six date labels and the peak on the y axis."""
    start = datetime(2026, 12, 2, 13, tzinfo=UTC)
    hours = [start + timedelta(hours=n) for n in range(24)]
    svg = series_bars_svg(list(range(24)), hours, unit="hour")
    assert svg.count("<rect") == 24
    labels = svg.count('text-anchor="middle"')
    assert 4 <= labels <= 7
    assert "02 Dec 13:00" in svg and ">23</text>" in svg
