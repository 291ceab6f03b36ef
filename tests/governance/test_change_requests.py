"""The four-eyes workflow: proposals, approval by a second person, atomic apply, versions."""

from __future__ import annotations

import pytest
from django.db import connection

from governance.choices import ChangeKind, ChangeStatus
from governance.models import (
    EventClass,
    FieldPolicy,
    PolicyVersion,
    ScannerRule,
    Schema,
    SchemaRevision,
)
from governance.roles import GOVERNANCE_APPROVER, READ_ONLY_AUDITOR
from governance.selectors import field_policy_specs, policy_epoch_get
from governance.services import (
    ChangeRequestError,
    change_request_apply,
    change_request_approve,
    change_request_draft,
    change_request_rebase,
    change_request_reject,
    change_request_restore,
    change_request_submit,
    change_request_withdraw,
    policy_review_mark,
    stale_reason,
)
from tests.audit_helpers import platform_audit_events
from tests.factories import AUDIT_SCHEMA, user_with_role

pytestmark = pytest.mark.django_db

TARGET = f"schema:{AUDIT_SCHEMA}"


@pytest.fixture
def second_approver(platform_config):
    return user_with_role("beatrice", GOVERNANCE_APPROVER)


@pytest.fixture
def audit_revision(platform_config) -> SchemaRevision:
    return SchemaRevision.objects.get(schema__name=AUDIT_SCHEMA, version=1)


def hash_request_id(owner, **kwargs):
    """Propose: hash the audit schema's request_id (kept by default)."""
    return change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=TARGET,
        payload={"1": {"request_id": {"classification": "internal", "action": "hash"}}},
        reason="request ids correlate users across services",
        actor=owner,
        **kwargs,
    )


def test_a_proposal_changes_nothing_until_a_second_person_approves_and_applies(
    owner, approver, audit_revision
):
    """Submitting leaves the live policy and the epoch alone; approve+apply changes both,
    records version 1 (version 0 is the state before) and audits every step."""
    before = field_policy_specs(audit_revision)["request_id"]
    epoch = policy_epoch_get()
    change_request = hash_request_id(owner)
    assert change_request.status == ChangeStatus.SUBMITTED
    assert field_policy_specs(audit_revision)["request_id"] == before
    assert policy_epoch_get() == epoch

    change_request = change_request_approve(change_request=change_request, actor=approver)
    assert change_request.status == ChangeStatus.APPROVED
    assert field_policy_specs(audit_revision)["request_id"] == before

    change_request = change_request_apply(change_request=change_request, actor=approver)
    assert change_request.status == ChangeStatus.APPLIED
    assert change_request.applied_version == 1
    assert field_policy_specs(audit_revision)["request_id"].action == "hash"
    assert policy_epoch_get() > epoch
    versions = {v.version: v for v in PolicyVersion.objects.filter(target=TARGET)}
    assert versions[0].state["1"]["request_id"]["action"] == before.action
    assert versions[1].state["1"]["request_id"]["action"] == "hash"
    assert versions[1].change_request_id == change_request.pk
    for step in ("submitted", "approved", "applied"):
        event = platform_audit_events(f"platform.change_request.{step}").get()
        assert event.payload["attributes"]["change_request"] == str(change_request.pk)


def test_an_author_cannot_approve_or_reject_their_own_change(owner, platform_config):
    """Even a platform admin holding every permission needs a second person."""
    from governance.roles import PLATFORM_ADMIN

    admin_user = user_with_role("root-admin", PLATFORM_ADMIN)
    change_request = hash_request_id(admin_user)
    with pytest.raises(ChangeRequestError) as refused:
        change_request_approve(change_request=change_request, actor=admin_user, apply=True)
    assert refused.value.code == "own_change"
    with pytest.raises(ChangeRequestError) as refused:
        change_request_reject(change_request=change_request, actor=admin_user, comment="no")
    assert refused.value.code == "own_change"
    change_request.refresh_from_db()
    assert change_request.status == ChangeStatus.SUBMITTED
    assert not PolicyVersion.objects.filter(target=TARGET, version=1).exists()


def test_approving_twice_is_refused(owner, approver, second_approver):
    change_request = hash_request_id(owner)
    change_request_approve(change_request=change_request, actor=approver)
    with pytest.raises(ChangeRequestError) as refused:
        change_request_approve(change_request=change_request, actor=second_approver)
    assert refused.value.code == "already_approved"
    change_request.refresh_from_db()
    assert change_request.reviewer == approver


def test_a_rejected_change_cannot_be_applied_and_rejection_needs_a_comment(
    owner, approver, audit_revision
):
    change_request = hash_request_id(owner)
    with pytest.raises(ChangeRequestError) as refused:
        change_request_reject(change_request=change_request, actor=approver, comment="  ")
    assert refused.value.code == "comment_required"
    change_request_reject(
        change_request=change_request, actor=approver, comment="search needs the raw id"
    )
    with pytest.raises(ChangeRequestError) as refused:
        change_request_apply(change_request=change_request, actor=approver)
    assert refused.value.code == "rejected"
    assert field_policy_specs(audit_revision)["request_id"].action == "keep"
    event = platform_audit_events("platform.change_request.rejected").get()
    assert event.payload["attributes"]["status"] == "rejected"


def test_only_submitted_requests_are_approved_and_only_approved_ones_apply(owner, approver):
    draft = hash_request_id(owner, submit=False)
    with pytest.raises(ChangeRequestError) as refused:
        change_request_approve(change_request=draft, actor=approver)
    assert refused.value.code == "not_submitted"
    with pytest.raises(ChangeRequestError) as refused:
        change_request_apply(change_request=draft, actor=approver)
    assert refused.value.code == "not_approved"
    with pytest.raises(ChangeRequestError) as refused:
        change_request_submit(change_request=draft, actor=approver)
    assert refused.value.code == "not_author"
    change_request_submit(change_request=draft, actor=owner)
    change_request_withdraw(change_request=draft, actor=owner)
    with pytest.raises(ChangeRequestError):
        change_request_approve(change_request=draft, actor=approver)


def test_a_stale_request_must_be_rebased_and_approved_again(owner, approver, audit_revision):
    """Two proposals against version 0: after the first applies, the second is a conflict
    (its base moved on) until its author rebases it; the rebase drops its approval."""
    first = hash_request_id(owner)
    second = change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=TARGET,
        payload={"1": {"request_id": {"classification": "internal", "action": "drop"}}},
        reason="we never search by request id",
        actor=owner,
    )
    change_request_approve(change_request=second, actor=approver)
    change_request_approve(change_request=first, actor=approver, apply=True)
    assert "version 0 to 1" in stale_reason(second)
    with pytest.raises(ChangeRequestError) as refused:
        change_request_apply(change_request=second, actor=approver)
    assert refused.value.code == "stale"
    assert field_policy_specs(audit_revision)["request_id"].action == "hash"

    with pytest.raises(ChangeRequestError) as refused:
        change_request_rebase(change_request=second, actor=approver)
    assert refused.value.code == "not_author"
    second = change_request_rebase(change_request=second, actor=owner)
    assert second.status == ChangeStatus.SUBMITTED and second.reviewer is None
    assert second.base_version == 1
    assert second.base_state == {
        "1": {
            "request_id": {
                "classification": "internal",
                "action": "hash",
                "keep_chars": None,
                "scan": False,
            }
        }
    }
    change_request_approve(change_request=second, actor=approver, apply=True)
    assert field_policy_specs(audit_revision)["request_id"].action == "drop"


def test_a_change_made_outside_the_workflow_also_makes_a_request_stale(owner, approver):
    change_request = hash_request_id(owner)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE governance_fieldpolicy SET action = 'truncate' WHERE path = 'request_id'"
        )
    with pytest.raises(ChangeRequestError) as refused:
        change_request_approve(change_request=change_request, actor=approver)
    assert refused.value.code == "stale"


@pytest.mark.parametrize(
    "pattern, message",
    [("(unclosed", "pattern:"), ("a" * 600, "pattern:")],
)
def test_a_scanner_rule_that_does_not_compile_or_is_too_long_is_refused(owner, pattern, message):
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.SCANNER_RULE,
            target="scanner_rule:employee_id",
            payload={"pattern": pattern, "action": "replace"},
            reason="employee ids",
            actor=owner,
        )
    assert refused.value.code == "invalid_change"
    assert message in refused.value.message
    assert not ScannerRule.objects.exists()
    assert not PolicyVersion.objects.exists()


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"1": {"no_such_field": {"classification": "public", "action": "keep"}}}, "no field"),
        ({"1": {"request_id": {"classification": "public", "action": "explode"}}}, "action"),
        ({"9": {"request_id": {"classification": "public", "action": "keep"}}}, "revision 9"),
        (
            {
                "1": {
                    "request_id": {"classification": "public", "action": "mask", "keep_chars": 999}
                }
            },
            "keep_chars",
        ),
    ],
)
def test_invalid_field_policy_proposals_are_refused_with_the_reason(owner, payload, fragment):
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.FIELD_POLICIES, target=TARGET, payload=payload, reason="x", actor=owner
        )
    assert fragment in refused.value.message


def test_proposals_need_a_reason_the_permission_and_an_actual_change(owner, platform_config):
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.CLASS_RETENTION,
            target="event_class:service_metric",
            payload={"retention_days": 60},
            reason=" ",
            actor=owner,
        )
    assert refused.value.code == "reason_required"
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.CLASS_RETENTION,
            target="event_class:service_metric",
            payload={"retention_days": 90},
            reason="same",
            actor=owner,
        )
    assert refused.value.code == "no_change"
    auditor = user_with_role("audrey", READ_ONLY_AUDITOR)
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.CLASS_RETENTION,
            target="event_class:service_metric",
            payload={"retention_days": 60},
            reason="cheaper",
            actor=auditor,
        )
    assert refused.value.code == "permission_denied"
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.CLASS_RETENTION,
            target="event_class:audit_event",
            payload={"retention_days": 10},
            reason="cheaper",
            actor=owner,
        )
    assert "between 90 and 3650" in refused.value.message


def test_retention_overrides_holds_and_lifecycle_go_through_the_workflow(owner, approver):
    """Each kind applies through its service once approved; holds carry hashes only."""
    schema = Schema.objects.get(name=AUDIT_SCHEMA)
    override = change_request_draft(
        kind=ChangeKind.RETENTION_OVERRIDE,
        target=f"retention_override:{AUDIT_SCHEMA}",
        payload={"retention_days": 500, "reason": "litigation"},
        reason="legal",
        actor=owner,
    )
    change_request_approve(change_request=override, actor=approver, apply=True)
    assert schema.retention.retention_days == 500

    retention = change_request_draft(
        kind=ChangeKind.CLASS_RETENTION,
        target="event_class:service_metric",
        payload={"retention_days": 60},
        reason="cost",
        actor=owner,
    )
    change_request_approve(change_request=retention, actor=approver, apply=True)
    assert EventClass.objects.get(name="service_metric").retention_days == 60

    hold = change_request_draft(
        kind=ChangeKind.LEGAL_HOLD_PLACE,
        target="legal_hold:new",
        payload={
            "reason": "case 42",
            "event_class": "audit_event",
            "actor_hashes": ["k1:" + "a" * 64],
        },
        reason="case 42",
        actor=owner,
    )
    hold = change_request_approve(change_request=hold, actor=approver, apply=True)
    from governance.models import LegalHold

    placed = LegalHold.objects.get()
    assert hold.target == f"legal_hold:{placed.pk}"
    assert placed.owner == owner and placed.actor_hashes == ["k1:" + "a" * 64]
    release = change_request_draft(
        kind=ChangeKind.LEGAL_HOLD_RELEASE,
        target=hold.target,
        payload={"released": True},
        reason="case closed",
        actor=owner,
    )
    change_request_approve(change_request=release, actor=approver, apply=True)
    placed.refresh_from_db()
    assert placed.released_at is not None

    lifecycle = change_request_draft(
        kind=ChangeKind.SCHEMA_STATUS,
        target=f"schema_revision:{AUDIT_SCHEMA}@1",
        payload={"status": "deprecated"},
        reason="v2 is coming",
        actor=owner,
    )
    change_request_approve(change_request=lifecycle, actor=approver, apply=True)
    assert SchemaRevision.objects.get(schema=schema, version=1).status == "deprecated"
    with pytest.raises(ChangeRequestError) as refused:
        change_request_draft(
            kind=ChangeKind.SCHEMA_STATUS,
            target=f"schema_revision:{AUDIT_SCHEMA}@1",
            payload={"status": "draft"},
            reason="oops",
            actor=owner,
        )
    assert "cannot move from deprecated to draft" in refused.value.message


def test_roll_back_is_a_new_change_request_restoring_an_earlier_version(
    owner, approver, audit_revision
):
    change_request_approve(change_request=hash_request_id(owner), actor=approver, apply=True)
    assert field_policy_specs(audit_revision)["request_id"].action == "hash"
    rollback = change_request_restore(target=TARGET, version=0, reason="", actor=owner)
    assert rollback.status == ChangeStatus.SUBMITTED
    assert rollback.restores_version == 0
    assert rollback.payload == {
        "1": {
            "request_id": {
                "classification": "internal",
                "action": "keep",
                "keep_chars": None,
                "scan": False,
            }
        }
    }
    assert field_policy_specs(audit_revision)["request_id"].action == "hash"  # not yet
    change_request_approve(change_request=rollback, actor=approver, apply=True)
    assert field_policy_specs(audit_revision)["request_id"].action == "keep"
    assert PolicyVersion.objects.filter(target=TARGET).count() == 3
    with pytest.raises(ChangeRequestError) as refused:
        change_request_restore(target=TARGET, version=7, reason="", actor=owner)
    assert refused.value.code == "unknown_version"


def test_unclassifying_a_field_through_a_change_removes_its_policy(owner, approver, audit_revision):
    change_request = change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=TARGET,
        payload={"1": {"request_id": None}},
        reason="fail closed",
        actor=owner,
    )
    change_request_approve(change_request=change_request, actor=approver, apply=True)
    assert not FieldPolicy.objects.filter(revision=audit_revision, path="request_id").exists()


def test_marking_a_policy_reviewed_needs_the_reviewer_permission_and_is_audited(owner, approver):
    with pytest.raises(ChangeRequestError):
        policy_review_mark(target=TARGET, actor=owner)
    review = policy_review_mark(target=TARGET, actor=approver, comment="looked fine")
    assert review.reviewed_by == approver
    event = platform_audit_events("platform.policy.reviewed").get()
    assert event.payload["attributes"]["target"] == TARGET


def test_a_failing_apply_changes_nothing(owner, approver, audit_revision, monkeypatch):
    """Applying is atomic: when the kind's service fails half-way, no policy, version or
    status change survives."""
    from governance.services import change_kinds

    change_request = change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=TARGET,
        payload={
            "1": {
                "request_id": {"classification": "internal", "action": "hash"},
                "outcome": {"classification": "public", "action": "drop"},
            }
        },
        reason="two fields",
        actor=owner,
    )
    change_request_approve(change_request=change_request, actor=approver)
    real = change_kinds.field_policies_set

    def fail_after_writing(**kwargs):
        real(**kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(change_kinds, "field_policies_set", fail_after_writing)
    with pytest.raises(RuntimeError):
        change_request_apply(change_request=change_request, actor=approver)
    change_request.refresh_from_db()
    assert change_request.status == ChangeStatus.APPROVED
    assert field_policy_specs(audit_revision)["request_id"].action == "keep"
    assert not PolicyVersion.objects.filter(target=TARGET, version=1).exists()


def test_the_author_steps_need_the_propose_permission_still(owner, approver):
    """An author whose role was taken away can no longer submit or rebase their drafts."""
    from django.contrib.auth.models import Group

    draft = hash_request_id(owner, submit=False)
    owner.groups.remove(*Group.objects.all())
    owner = type(owner).objects.get(pk=owner.pk)  # a fresh permission cache
    with pytest.raises(ChangeRequestError) as refused:
        change_request_submit(change_request=draft, actor=owner)
    assert refused.value.code == "permission_denied"
    with pytest.raises(ChangeRequestError) as refused:
        change_request_rebase(change_request=draft, actor=owner)
    assert refused.value.code == "permission_denied"
    draft.refresh_from_db()
    assert draft.status == ChangeStatus.DRAFT
