"""Admin: performance trends page, a chart per metric path with budget line, failures, regressions."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ingest.artifacts import perf_signoff_ingest
from ingest.pipeline import IngestContext
from tests.factories import perf_signoff_artifact

pytestmark = pytest.mark.django_db
URL = "/admin/ingest/performancetrend/"


def sign_off(build: int, root_p95: float, *, source: str = "web-shell") -> None:
    artifact = perf_signoff_artifact(build_id=f"build-{build}", age=timedelta(days=30 - build))
    artifact["metrics"]["boot"]["root"]["p95_ms"] = root_p95
    report = perf_signoff_ingest(
        content=json.dumps(artifact).encode(), context=IngestContext(source=source)
    )
    assert report.totals()["rejected"] == 0


@pytest.fixture
def history(platform_config):
    """Five builds: root p95 steady near 2 ms, one over budget, then a slower latest build."""
    for build, value in enumerate([2.0, 2.1, 125.0, 1.9, 2.0, 2.9]):
        sign_off(build, value)


def chart_of(page: str, anchor: str) -> str:
    start = page.index(f'id="{anchor}"')
    return page[start : page.index("</svg>", start)]


def test_trends_page_draws_a_chart_per_metric_with_budget_line_and_failures(admin_client, history):
    """Each metric path has an SVG chart; the failed build is marked, the budget line drawn."""
    response = admin_client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<svg class="trend-chart"') == 23
    root = chart_of(page, "web-shell-bootrootp95_ms")
    assert 'class="budget-line"' in root and "budget 120 ms" in root
    assert root.count('class="failure"') == 1
    assert "build build-2 (" in root and "): 125 ms (budget 120 ms) FAILED" in root
    assert root.count('class="point"') == 5
    assert 'src="http' not in page and 'href="http' not in page  # nothing from a CDN


def test_regression_list_names_the_slower_latest_build_within_budget(admin_client, history):
    """2.9 ms against a ~2 ms median is listed as a regression although within budget."""
    page = admin_client.get(URL).content.decode()
    start = page.index('<table id="regressions"')
    table = page[start : page.index("</table>", start)]
    assert table.count('class="regression"') == 1
    assert "boot.root.p95_ms" in table and "build-5" in table
    assert "+45.0%" in table  # 2.9 against the median (2.0) of the previous five builds
    assert "<td>yes</td>" in table  # within budget


def test_regressed_charts_come_first_in_a_grid_without_setting_names(admin_client, history):
    """The regressed metric leads the grid; the page speaks of builds, not settings."""
    page = admin_client.get(URL).content.decode()
    grid = page.split('id="trend-grid"')[1]
    first_chart = grid.split('<div class="trend')[1]
    assert first_chart.startswith(' is-regressed"') and 'id="web-shell-bootrootp95_ms"' in first_chart
    assert grid.count(" is-regressed") == 1
    assert "TELEMETRY_" not in page
    assert "e+0" not in page  # no scientific notation


def test_filters_by_source_and_metric_prefix(admin_client, history):
    """?source= and ?metric= narrow the charts; another source's builds stay apart."""
    sign_off(9, 3.0, source="desktop-shell")
    page = admin_client.get(URL, {"source": "desktop-shell", "metric": "boot.root."}).content
    page = page.decode()
    assert page.count('<svg class="trend-chart"') == 3  # p95, avg, max of boot.root
    assert "desktop-shell" in page and "build-9" in page and "build-5" not in page


def test_trends_page_needs_admin_access(client, history):
    """Anonymous users are sent to the login page."""
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_only_the_latest_builds_are_drawn(admin_client, history, settings):
    """TELEMETRY_PERF_TREND_MAX_BUILDS bounds the builds per chart to the most recent ones."""
    settings.TELEMETRY_PERF_TREND_MAX_BUILDS = 3
    page = admin_client.get(URL, {"metric": "boot.root.p95_ms"}).content.decode()
    root = chart_of(page, "web-shell-bootrootp95_ms")
    assert root.count('class="point"') + root.count('class="failure"') == 3
    assert "build-5" in root and "build-2" not in root
