"""Four-eyes policy change in a real browser: one user proposes, another approves.

A governance owner edits the audit schema's field policies in the admin and proposes
hashing ``request_id``; the next ingested event still keeps it (nothing applies yet).
A governance approver opens the change request, sees the diff and approves and
applies it; the event ingested next has its request id hashed.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from governance.models import SchemaRevision
from governance.roles import GOVERNANCE_APPROVER, GOVERNANCE_OWNER, roles_sync
from ingest.models import Event
from ingest.services import api_key_create
from tests.browser.chromium import CHROMIUM_ARGS, TIMEOUT_MS, require_chromium
from tests.factories import AUDIT_SCHEMA, audit_event

PASSWORD = "pw-browser-2!"


def staff_in(username: str, role: str) -> None:
    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))


def log_in(browser, base_url: str, username: str):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    return page


def post_event(page, base_url: str, secret: str, request_id: str) -> dict:
    body = {"schema": AUDIT_SCHEMA, "events": [audit_event(request_id=request_id)]}
    response = page.request.post(
        f"{base_url}/api/v1/events",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    assert response.status == 200, response.text()
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_owner_proposes_approver_approves_and_the_next_event_is_hashed(
    live_server, platform_config, settings
):
    executable = require_chromium()
    settings.TELEMETRY_PLAN_REFRESH_SECONDS = 0
    # Flushes between transactional tests drop the migration-made groups: re-sync them.
    roles_sync(group_model=Group, permission_model=Permission)
    staff_in("olivia", GOVERNANCE_OWNER)
    staff_in("arthur", GOVERNANCE_APPROVER)
    secret = api_key_create(name="browser", source="control-service", actor=None).secret
    revision = SchemaRevision.objects.get(schema__name=AUDIT_SCHEMA, version=1)
    base = live_server.url
    # Every ORM call happens before or after Playwright's event loop runs in this thread.
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            owner = log_in(browser, base, "olivia")
            owner.goto(f"{base}/admin/governance/fieldpolicy/edit/{revision.pk}/")
            row = owner.locator("#field-policy-form tr").filter(
                has=owner.locator("code", has_text=re.compile(r"^request_id$"))
            )
            row.locator("select[name$='-action']").select_option("hash")
            owner.fill("#id_change_reason", "request ids link one person's sessions")
            owner.click("#field-policy-form input[type=submit]")
            expect(owner.locator("#cr-status")).to_have_text("Submitted")
            expect(owner.locator("#cr-diff")).to_contain_text("internal / hash")
            expect(owner.locator("button[value=approve_apply]")).to_have_count(0)
            post_event(owner, base, secret, "req-before-approval")

            approver = log_in(browser, base, "arthur")
            approver.goto(f"{base}/admin/governance/changerequest/")
            approver.get_by_role("link", name=re.compile("Field policies of")).first.click()
            expect(approver.locator("#cr-diff")).to_contain_text("v1 request_id")
            approver.fill("#id_comment", "agreed: hash them")
            approver.click("button[value=approve_apply]")
            expect(approver.locator("#cr-status")).to_have_text("Applied")
            post_event(approver, base, secret, "req-after-approval")
        finally:
            browser.close()

    stored = Event.objects.filter(source="control-service").order_by("received_at")
    request_ids = [event.payload.get("request_id", "") for event in stored]
    assert request_ids[0] == "req-before-approval"
    assert request_ids[1].startswith("k1:")
    assert "req-after-approval" not in json.dumps(stored[1].payload)
