"""Admin pages of the workflow: change request page, steps, history, review, matrix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from governance.choices import ChangeKind, ChangeStatus
from governance.models import ChangeRequest, PolicyReview, Schema, SchemaRevision
from governance.roles import (
    READ_ONLY_AUDITOR,
    SECURITY_ANALYST,
)
from governance.selectors import field_policy_specs
from governance.services import change_request_approve, change_request_draft
from tests.factories import AUDIT_SCHEMA, audit_event, batch, user_with_role

pytestmark = pytest.mark.django_db

TARGET = f"schema:{AUDIT_SCHEMA}"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def propose_hash_request_id(owner) -> ChangeRequest:
    return change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=TARGET,
        payload={"1": {"request_id": {"classification": "internal", "action": "hash"}}},
        reason="request ids link sessions",
        actor=owner,
    )


def page(client: Client, change_request: ChangeRequest) -> str:
    response = client.get(f"/admin/governance/changerequest/{change_request.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_the_diff_and_stored_events_under_the_new_policy(
    owner, approver, ingest_client
):
    """The diff names the field with old and new policy; the preview shows the latest
    stored event as stored and re-rendered with the field hashed."""
    ingest_client.post(batch(audit_event(request_id="req-preview-1")))
    change_request = propose_hash_request_id(owner)
    html = page(logged_in(approver), change_request)
    diff = html.split('id="cr-diff"')[1].split("</table>")[0]
    assert "v1 request_id" in diff
    assert "internal / keep" in diff and "internal / hash" in diff
    first_event = html.split('<table class="cr-json-diff tgp-table" data-event=')[1]
    first_event = first_event.split("</table>")[0]
    # Senders' events come first, before the platform's own (newer) audit events; the
    # changed field is the highlighted row, old value as stored, new one hashed.
    changed = [row for row in first_event.split("<tr")[1:] if 'class="diff-changed"' in row]
    assert len(changed) == 1 and 'data-path="request_id"' in changed[0]
    old, new = changed[0].split('class="cr-old">')[1].split('class="cr-new">')
    assert "req-preview-1" in old
    assert "req-preview-1" not in new and "k1:" in new


def test_a_sample_event_is_shown_under_both_policies_and_not_stored(owner, approver):
    from ingest.models import Event

    change_request = propose_hash_request_id(owner)
    client = logged_in(approver)
    sample = (
        '{"event_name": "auth.login", "outcome": "success", "request_id": "req-sample-9",'
        ' "occurred_at": "2026-11-20T10:00:00Z"}'
    )
    response = client.post(
        f"/admin/governance/changerequest/{change_request.pk}/",
        {"preview": "1", "sample": sample},
    )
    html = response.content.decode()
    block = html.split('id="sample-preview"')[1]
    current, proposed = block.split("proposed policy")
    assert "req-sample-9" in current
    assert "req-sample-9" not in proposed.split("</div>")[0]
    assert not Event.objects.filter(payload__request_id="req-sample-9").exists()


def test_the_author_sees_no_approval_and_a_second_person_approves_and_applies(owner, approver):
    change_request = propose_hash_request_id(owner)
    revision = SchemaRevision.objects.get(schema__name=AUDIT_SCHEMA, version=1)
    own = logged_in(owner)
    html = page(own, change_request)
    assert 'value="approve_apply"' not in html
    assert "a second person must approve it" in html
    refused = own.post(
        f"/admin/governance/changerequest/{change_request.pk}/",
        {"step": "approve_apply"},
        follow=True,
    )
    assert "own_change" in refused.content.decode()
    assert field_policy_specs(revision)["request_id"].action == "keep"

    other = logged_in(approver)
    assert 'value="approve_apply"' in page(other, change_request)
    other.post(
        f"/admin/governance/changerequest/{change_request.pk}/",
        {"step": "approve_apply", "comment": "agreed"},
    )
    change_request.refresh_from_db()
    assert change_request.status == ChangeStatus.APPLIED
    assert change_request.review_comment == "agreed"
    assert field_policy_specs(revision)["request_id"].action == "hash"
    # Applied: nothing left to do, so no empty review section (it used to be a bare heading).
    for client in (own, other):
        html = page(client, change_request)
        assert 'id="cr-review"' not in html and "<h2>Review</h2>" not in html


def test_the_decision_buttons_are_distinct_and_above_the_diff(owner, approver):
    change_request = propose_hash_request_id(owner)
    html = page(logged_in(approver), change_request)
    assert html.index('id="cr-actions"') < html.index('id="cr-diff"')
    classes = {
        step: html.split(f'value="{step}" class="')[1].split('"')[0]
        for step in ("approve", "approve_apply", "reject")
    }
    assert classes == {
        "approve": "btn btn-approve",
        "approve_apply": "btn btn-apply",
        "reject": "btn btn-reject",
    }


def test_a_legal_hold_request_diff_has_human_labels(owner):
    from governance.services.change_kinds import NEW_HOLD_TARGET

    change_request = change_request_draft(
        kind=ChangeKind.LEGAL_HOLD_PLACE,
        target=NEW_HOLD_TARGET,
        payload={
            "reason": "case 7",
            "event_class": "audit_event",
            "schema": "",
            "actor_hashes": [],
            "occurred_from": "2026-11-01T00:00:00+00:00",
            "occurred_to": None,
            "expires_at": None,
        },
        reason="case 7",
        actor=owner,
    )
    diff = page(logged_in(owner), change_request).split('id="cr-diff"')[1].split("</table>")[0]
    assert "Events from" in diff and "Event class" in diff
    assert "<code>occurred_from</code>" not in diff and "<code>event_class</code>" not in diff


def test_rejecting_without_a_comment_is_refused_on_the_page(owner, approver):
    change_request = propose_hash_request_id(owner)
    client = logged_in(approver)
    url = f"/admin/governance/changerequest/{change_request.pk}/"
    html = client.post(url, {"step": "reject"}, follow=True).content.decode()
    assert "comment_required" in html
    client.post(url, {"step": "reject", "comment": "keep it searchable"})
    change_request.refresh_from_db()
    assert change_request.status == ChangeStatus.REJECTED


def test_a_stale_request_says_so_and_offers_its_author_a_rebase(owner, approver):
    stale = propose_hash_request_id(owner)
    winner = change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=TARGET,
        payload={"1": {"request_id": {"classification": "internal", "action": "drop"}}},
        reason="drop them",
        actor=owner,
    )
    change_request_approve(change_request=winner, actor=approver, apply=True)
    html = page(logged_in(owner), stale)
    assert 'id="cr-stale"' in html and "rebase it" in html
    assert 'value="rebase"' in html
    logged_in(owner).post(f"/admin/governance/changerequest/{stale.pk}/", {"step": "rebase"})
    stale.refresh_from_db()
    assert stale.base_version == 1


def test_history_lists_versions_with_people_and_restores_one(owner, approver):
    change_request_approve(
        change_request=propose_hash_request_id(owner), actor=approver, apply=True
    )
    client = logged_in(owner)
    url = f"/admin/governance/changerequest/history/{TARGET}/"
    html = client.get(url).content.decode()
    table = html.split('id="policy-history"')[1]
    assert "olivia" in table and "arthur" in table
    assert "request ids link sessions" in table
    assert "state before the first reviewed change" in table
    response = client.post(url, {"version": "0", "reason": "hashing broke joins"})
    rollback = ChangeRequest.objects.latest("id")
    assert response.status_code == 302
    assert rollback.restores_version == 0 and rollback.reason == "hashing broke joins"
    index = client.get("/admin/governance/changerequest/history/").content.decode()
    assert TARGET in index


def test_review_page_lists_overdue_policies_and_a_reviewer_marks_one(approver, owner, settings):
    settings.TELEMETRY_POLICY_REVIEW_DAYS = 30
    Schema.objects.filter(name=AUDIT_SCHEMA).update(created_at=timezone.now() - timedelta(days=45))
    client = logged_in(approver)
    html = client.get("/admin/governance/changerequest/review/").content.decode()
    due_rows = [row for row in html.split("<tr") if 'class="due"' in row]
    assert any(f"Field policies of {AUDIT_SCHEMA}" in row for row in due_rows)
    assert not any("Field policies of telemetry.service_metric.v1" in row for row in due_rows)
    # The heading counts the due table below it; policies not due are in their own table.
    due_table = html.split('id="policy-review-due"')[1].split("</table>")[0]
    due_count = due_table.count("<tr") - 1
    assert f'id="due-heading">Due for review ({due_count})<' in html
    assert "Field policies of telemetry.service_metric.v1" not in due_table
    rest = html.split('id="policy-review"')[1].split("</table>")[0]
    assert "Field policies of telemetry.service_metric.v1" in rest
    assert "TELEMETRY_" not in html
    client.post("/admin/governance/changerequest/review/", {"target": TARGET, "comment": "ok"})
    assert PolicyReview.objects.get().reviewed_by == approver
    html = client.get("/admin/governance/changerequest/review/").content.decode()
    due_rows = [row for row in html.split("<tr") if 'class="due"' in row]
    assert not any(f"Field policies of {AUDIT_SCHEMA}" in row for row in due_rows)
    if not due_rows:
        assert 'id="due-heading">Due for review (0)<' in html and 'id="nothing-due"' in html
    owner_post = logged_in(owner).post(
        "/admin/governance/changerequest/review/", {"target": TARGET}
    )
    assert owner_post.status_code == 403


def test_matrix_highlights_unclassified_and_personal_fields_kept(owner, approver):
    from governance.models import FieldPolicy

    revision = SchemaRevision.objects.get(schema__name=AUDIT_SCHEMA, version=1)
    FieldPolicy.objects.filter(revision=revision, path="outcome").delete()
    FieldPolicy.objects.filter(revision=revision, path="request_id").update(
        classification="personal", action="keep"
    )
    schema = Schema.objects.get(name=AUDIT_SCHEMA)
    html = (
        logged_in(approver)
        .get(f"/admin/governance/changerequest/review/schema/{schema.pk}/")
        .content.decode()
    )
    rows = {
        row.split('data-path="')[1].split('"')[0]: row
        for row in html.split("<tr")[1:]
        if 'data-path="' in row
    }
    assert 'class="unclassified"' in rows["outcome"]
    assert 'class="risky"' in rows["request_id"]
    assert 'class=""' in rows["event_name"]


def test_roles_see_what_they_may(owner, approver, platform_config):
    """An auditor reads change requests but gets no buttons and cannot act; an analyst
    cannot open them."""
    change_request = propose_hash_request_id(owner)
    auditor = logged_in(user_with_role("audrey", READ_ONLY_AUDITOR))
    html = page(auditor, change_request)
    assert 'name="step"' not in html
    auditor.post(f"/admin/governance/changerequest/{change_request.pk}/", {"step": "approve"})
    change_request.refresh_from_db()
    assert change_request.status == ChangeStatus.SUBMITTED
    analyst = logged_in(user_with_role("sam", SECURITY_ANALYST))
    response = analyst.get(f"/admin/governance/changerequest/{change_request.pk}/")
    assert response.status_code == 403


def test_bad_requests_on_the_workflow_pages_are_answered_not_500(owner, approver):
    """A mangled id is 404; an unknown step or a non-numeric version is refused by message."""
    change_request = propose_hash_request_id(owner)
    client = logged_in(approver)
    assert client.get("/admin/governance/changerequest/abc/change/").status_code == 404
    assert client.get("/admin/governance/changerequest/999999/").status_code == 404
    html = client.post(
        f"/admin/governance/changerequest/{change_request.pk}/", {"step": "explode"}, follow=True
    ).content.decode()
    assert "unknown_step" in html
    html = logged_in(owner).post(
        f"/admin/governance/changerequest/history/{TARGET}/", {"version": "two"}, follow=True
    ).content.decode()
    assert "Not proposed" in html
    change_request.refresh_from_db()
    assert change_request.status == ChangeStatus.SUBMITTED
