"""The governance home and violation reports in chromium: what each role sees, the click
from the home to a violation's drill-down, no horizontal overflow at 1440x900, and the
README screenshot (``--screenshots`` writes docs/screenshots/home.png)."""

from __future__ import annotations

import pytest

from tests.browser.home_data import PASSWORD, conformance_recorded, governance_home_data
from tests.browser.session import capture, horizontal_overflow

pytestmark = pytest.mark.django_db(transaction=True)


def _sections(page) -> set[str]:
    return set(page.eval_on_selector_all("#home section[id]", "els => els.map(e => e.id)"))


def _tasks(page) -> dict[str, int]:
    cards = page.eval_on_selector_all(
        "#needs-me .card", "els => els.map(e => [e.id, Number(e.dataset.count)])"
    )
    return {key.removeprefix("task-"): count for key, count in cards}


def _links(page) -> set[str]:
    return set(
        page.eval_on_selector_all("#workflows .links a", "els => els.map(e => e.textContent)")
    )


def test_home_per_role(browser_session, platform_config, tmp_path):
    """Owner: own request to rebase (none), no approvals; approver: both requests to approve
    and policies due; analyst: audit search only; privacy officer: the erasure it did not
    ask for and the expiring hold, no ingest; auditor: ingest, coverage, purges and
    conformance, nothing to approve."""
    governance_home_data()
    conformance_recorded(tmp_path)
    from playwright.sync_api import expect

    approver = browser_session.login("april", PASSWORD)
    expect(approver.locator("h1")).to_have_text("Governance home")
    expect(approver.locator("#site-name")).to_contain_text("Telemetry Governance Platform")
    assert _tasks(approver)["approve"] == 2
    assert "review" in _tasks(approver)
    assert {"needs-me", "workflows", "ingest", "coverage", "purges"} <= _sections(approver)

    owner = browser_session.login("olivia", PASSWORD)
    assert "approve" not in _tasks(owner) and _tasks(owner)["rebase"] == 0
    assert "Change requests" in _links(owner)

    analyst = browser_session.login("sam", PASSWORD)
    assert _sections(analyst) == {"workflows"}
    assert _links(analyst) == {"Audit search"}

    asker = browser_session.login("pia", PASSWORD)
    assert _tasks(asker) == {"holds": 1, "subjects": 0}
    other = browser_session.login("paul", PASSWORD)
    assert _tasks(other) == {"holds": 1, "subjects": 1}
    assert "ingest" not in _sections(other)
    expect(other.locator("#task-holds")).to_contain_text("case 2026-114")

    auditor = browser_session.login("audrey", PASSWORD)
    assert {"ingest", "coverage", "purges", "conformance"} <= _sections(auditor)
    assert "needs-me" not in _sections(auditor) or "approve" not in _tasks(auditor)
    expect(auditor.locator("#conformance")).to_contain_text("MISSING")
    expect(auditor.locator("#conformance")).to_contain_text("legacy-dashboard-rules.yaml")
    expect(auditor.locator("#next-purge")).to_contain_text("Next scheduled purge")
    expect(auditor.locator("#purges .purge-row")).to_contain_text("183211")
    expect(auditor.locator("#ingest svg.stacked-bars")).to_be_visible()


def test_violation_drill_down_from_the_home(browser_session, platform_config):
    """From the home's ingest table, the wrong_type code opens the filtered violation list;
    its row opens the drill-down with the headline and both series."""
    governance_home_data()
    from playwright.sync_api import expect

    page = browser_session.login("audrey", PASSWORD)
    page.locator("#ingest-table a", has_text="wrong_type").first.click()
    expect(page.locator("h1")).to_have_text("Violations")
    rows = page.locator("#violations-table tr.violation-row")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("svg.sparkline")).to_be_visible()
    rows.first.locator("a.violation-link").click()
    expect(page.locator("#violation-headline")).to_have_text(
        "reconnect.attempt: wrong_type, 1,204 in the last hour from web-shell 1.2.0"
    )
    assert page.locator("#hourly svg rect").count() == 24
    assert page.locator("#daily svg rect").count() == 30
    assert horizontal_overflow(page) == 0


def test_pages_fit_1440_wide(browser_session, platform_config, tmp_path):
    """Home (admin with every section), violation list: scrollWidth <= innerWidth."""
    governance_home_data()
    conformance_recorded(tmp_path)
    page = browser_session.login("root", PASSWORD)
    assert page.evaluate("window.innerWidth") == 1440
    assert page.locator("#home #ingest").count() == 1
    assert horizontal_overflow(page) == 0
    page.goto(f"{browser_session.base_url}/admin/violations/?window=30d")
    assert page.locator("tr.violation-row").count() == 2
    assert horizontal_overflow(page) == 0


def test_screenshot_of_the_home(browser_session, platform_config, screenshot_dir, tmp_path):
    """The README's home screenshot: 1440x900, chromium, an approver's home with data."""
    governance_home_data()
    conformance_recorded(tmp_path)
    page = browser_session.login("april", PASSWORD)
    target = capture(page, "/admin/", "home.png", screenshot_dir)
    assert target.stat().st_size > 20_000
    capture(page, "/admin/violations/", "violations.png", screenshot_dir)
