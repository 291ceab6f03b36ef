"""The existing admin pages at 1440x900 in chromium: none overflows horizontally, and the
README screenshots of audit search, a change request and the trends page
(``--screenshots`` writes them into docs/screenshots/)."""

from __future__ import annotations

import json

import pytest

from tests.browser.admin_pages_data import PASSWORD, admin_pages_data
from tests.browser.session import capture, horizontal_overflow

pytestmark = pytest.mark.django_db(transaction=True)


def _pages(rows: dict[str, object]) -> dict[str, str]:
    return {
        "audit search": "/admin/audit/auditevent/?q=expired",
        "change request": f"/admin/governance/changerequest/{rows['change_request'].pk}/",
        "trends": "/admin/ingest/performancetrend/",
        "review matrix": f"/admin/governance/changerequest/review/schema/{rows['schema'].pk}/",
        "revision detail": f"/admin/governance/schemarevision/{rows['revision'].pk}/change/",
        "policy review": "/admin/governance/changerequest/review/",
        "field policies": f"/admin/governance/fieldpolicy/edit/{rows['revision'].pk}/",
    }


LISTS = {
    "purge runs": "/admin/ingest/purgerun/",
    "legal holds": "/admin/governance/legalhold/",
    "field policy list": "/admin/governance/fieldpolicy/",
    "purge dry run": "/admin/ingest/purgerun/dry-run/",
}
# A list's table scrolling inside its box clips its right-hand columns off screen.
INNER_CLIP = (
    "Array.from(document.querySelectorAll('#changelist .results, #content table'))"
    ".map(e => Math.max(0, e.scrollWidth - e.clientWidth)).reduce((a, b) => Math.max(a, b), 0)"
)


def test_key_pages_fit_1440_wide(browser_session, platform_config):
    """scrollWidth <= innerWidth on every key page, with wide rows loaded."""
    from audit.models import AuditEvent

    rows = admin_pages_data()
    event_pk = AuditEvent.objects.filter(source="control-service").first().pk
    page = browser_session.login("root", PASSWORD)
    assert page.evaluate("window.innerWidth") == 1440
    overflow = {}
    for name, url in _pages(rows).items():
        response = page.goto(f"{browser_session.base_url}{url}")
        assert response.status == 200, name
        page.wait_for_load_state("load")
        overflow[name] = horizontal_overflow(page)
    for name, url in LISTS.items():
        response = page.goto(f"{browser_session.base_url}{url}")
        assert response.status == 200, name
        overflow[name] = horizontal_overflow(page)
        overflow[f"{name} (inner)"] = page.evaluate(INNER_CLIP)
    page.goto(f"{browser_session.base_url}/admin/audit/auditevent/{event_pk}/correlation/")
    overflow["correlation"] = horizontal_overflow(page)
    page.goto(f"{browser_session.base_url}/admin/governance/scannerrule/preview/")
    page.select_option("#id_schema", index=1)
    long_value = "see " + "https://example.test/" + "a" * 300 + " mail eli.898485@corp.test"
    sample = {"event_name": "auth.login", "attributes": {"note": long_value}}
    page.fill("#id_sample", json.dumps(sample))
    page.click(".preview-form input[type=submit]")
    page.wait_for_selector("#preview-result")
    overflow["redaction preview"] = horizontal_overflow(page)
    assert overflow == dict.fromkeys(overflow, 0)
    # The change request's decision buttons are on the first screen.
    page.goto(f"{browser_session.base_url}{_pages(rows)['change request']}")
    box = page.locator("button[value=approve_apply]").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900


def test_screenshots_of_audit_search_change_request_and_trends(
    browser_session, platform_config, screenshot_dir
):
    """The README's screenshots: 1440x900, chromium, a superuser's view with data."""
    rows = admin_pages_data()
    page = browser_session.login("root", PASSWORD)
    pages = _pages(rows)
    for name, file in (
        ("audit search", "audit_search.png"),
        ("change request", "change_request.png"),
        ("trends", "trends.png"),
    ):
        target = capture(page, pages[name], file, screenshot_dir)
        assert target.stat().st_size > 20_000, name
