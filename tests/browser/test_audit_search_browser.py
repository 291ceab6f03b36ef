"""Audit search in a real browser: Debian's chromium driven by Playwright against live_server.

An analyst logs in through the admin login form, searches by a raw actor id, opens the
correlation timeline and downloads a CSV export. Chromium is the system package
(``make chromium``); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from ingest import pipeline
from tests.browser.chromium import CHROMIUM_ARGS, TIMEOUT_MS, require_chromium
from tests.factories import AUDIT_SCHEMA, iso

ACTOR = "carol.4711@corp.test"


def ingest(schema: str, event: dict, source: str) -> None:
    result = pipeline.ingest_batch(
        [pipeline.RawItem(schema, event)], pipeline.IngestContext(source=source)
    )
    assert result.results[0].status == "accepted", result.as_dict()


def analyst_with_events() -> None:
    """A security analyst (staff) and events: the actor's login, noise, a correlated diagnostic."""
    # Flushes between transactional tests drop the migration-made group: make sure it exists.
    group, _ = Group.objects.get_or_create(name="security analyst")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="audit",
            codename__in=["search_auditevent", "view_auditevent"],
        )
    )
    user = get_user_model().objects.create_user("analyst", password="pw-browser-1!", is_staff=True)
    user.groups.add(group)

    now = datetime.now(UTC)
    ingest(
        AUDIT_SCHEMA,
        {
            "event_name": "auth.login",
            "outcome": "success",
            "occurred_at": iso(now - timedelta(minutes=5)),
            "user_id": ACTOR,
            "request_id": "req_browser_1",
            "attributes": {"client": "web"},
        },
        "control-service",
    )
    ingest(
        AUDIT_SCHEMA,
        {
            "event_name": "auth.logout",
            "outcome": "success",
            "occurred_at": iso(now - timedelta(minutes=4)),
            "user_id": "someone.else@corp.test",
            "request_id": "req_browser_2",
        },
        "control-service",
    )
    ingest(
        "telemetry.client_diagnostic.v1",
        {
            "envelope": {
                "event_id": "diag-browser-1",
                "occurred_at": iso(now - timedelta(minutes=6)),
                "correlation": {"request_id": "req_browser_1"},
            },
            "name": "slow.render",
        },
        "web",
    )


@pytest.mark.django_db(transaction=True)
def test_analyst_searches_correlates_and_exports_in_chromium(
    live_server, platform_config, tmp_path
):
    """Log in, filter by raw actor, open the correlation timeline, download the CSV export."""
    executable = require_chromium()
    analyst_with_events()
    # Playwright's sync API runs an event loop in this thread while it is open, which
    # Django's async-unsafe check would refuse: every ORM call of this test happens
    # before it starts or after it stops (live_server answers from its own thread).
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(accept_downloads=True)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()

            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "analyst")
            page.fill("#id_password", "pw-browser-1!")
            page.click("input[type=submit]")
            expect(page.locator("#user-tools")).to_contain_text("analyst")

            page.click("a[href='/admin/audit/auditevent/']")
            expect(page.locator("#audit-search-form")).to_be_visible()
            expect(page.locator("#audit-estimate")).to_contain_text("match")

            page.fill("#id_actor", ACTOR)
            page.click("#audit-search-form input[type=submit]")
            rows = page.locator("#audit-results tr.audit-row").filter(has_not_text="platform")
            expect(rows).to_have_count(1)
            expect(rows.first.locator(".event-name")).to_have_text("auth.login")
            expect(rows.first.locator(".request-id")).to_have_text("req_browser_1")
            expect(page.locator("#audit-results")).not_to_contain_text("auth.logout")

            with page.expect_download() as download_info:
                page.click("#export-csv")
            download = download_info.value
            assert download.suggested_filename == "audit-events.csv"
            target = tmp_path / "export.csv"
            download.save_as(target)
            exported = list(csv.DictReader(io.StringIO(target.read_text())))
            assert [(row["event_name"], row["request_id"]) for row in exported] == [
                ("auth.login", "req_browser_1")
            ]
            assert exported[0]["actor_hash"].startswith("k1:")
            assert ACTOR not in target.read_text()

            rows.first.locator("a.detail-link").click()
            timeline = page.locator("#audit-timeline tr.timeline-row")
            expect(timeline).to_have_count(2)
            expect(timeline.nth(0)).to_have_attribute("data-class", "client_diagnostic")
            expect(timeline.nth(0)).to_contain_text("slow.render")
            expect(timeline.nth(1)).to_have_attribute("data-class", "audit_event")
            expect(timeline.nth(1)).to_have_class("timeline-row current")
            expect(page.locator("#payload")).to_contain_text('"event_name": "auth.login"')
        finally:
            browser.close()
