"""Reads of the reviewed workflow: history, the review matrix, policies due, change previews."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max
from django.utils import timezone
from google.protobuf import json_format

from telemetry_platform.conf import telemetry_settings

from .choices import ChangeKind, ChangeStatus, Classification, RedactionAction, RevisionStatus
from .defaults import PLATFORM_SOURCE
from .models import (
    ChangeRequest,
    EventClass,
    FieldPolicy,
    PolicyReview,
    PolicyVersion,
    Schema,
    SchemaRevision,
)
from .ports import stored_events_latest
from .redaction import PolicySpec, redact_message, redaction_plan_compile
from .schemas import load_schema
from .selectors import content_scanner_get, field_policy_specs, revision_leaf_paths

RISKY_CLASSIFICATIONS = frozenset({Classification.PERSONAL, Classification.SECRET})


def schema_target(schema: Schema | str) -> str:
    return f"schema:{schema if isinstance(schema, str) else schema.name}"


def policy_history(target: str) -> list[PolicyVersion]:
    """Every recorded version of a target, newest first, with who proposed and approved it."""
    return list(
        PolicyVersion.objects.filter(target=target)
        .select_related(
            "change_request__author", "change_request__reviewer", "change_request__applied_by"
        )
        .order_by("-version")
    )


@dataclass(frozen=True)
class FieldChange:
    change_request_id: int
    applied_at: datetime
    author: str
    approver: str


@dataclass(frozen=True)
class MatrixRow:
    path: str
    classification: str
    action: str
    policy: str
    last_change: FieldChange | None
    updated_at: datetime | None
    unclassified: bool
    risky: bool


@dataclass(frozen=True)
class RevisionMatrix:
    revision: SchemaRevision
    rows: list[MatrixRow]

    @property
    def flagged(self) -> int:
        return sum(1 for row in self.rows if row.unclassified or row.risky)


def _field_changes(schema: Schema) -> dict[tuple[str, str], FieldChange]:
    """(version, path) -> the last applied change request that set it."""
    last: dict[tuple[str, str], FieldChange] = {}
    applied = (
        ChangeRequest.objects.filter(
            kind=ChangeKind.FIELD_POLICIES,
            target=schema_target(schema),
            status=ChangeStatus.APPLIED,
        )
        .select_related("author", "reviewer")
        .order_by("applied_at")
    )
    for change_request in applied:
        change = FieldChange(
            change_request.pk,
            change_request.applied_at,
            change_request.author.get_username(),
            change_request.reviewer.get_username() if change_request.reviewer else "",
        )
        for version, fields in change_request.payload.items():
            for path in fields:
                last[(version, path)] = change
    return last


def _action_text(policy: FieldPolicy | None) -> str:
    if policy is None:
        return "—"
    text = policy.action
    if policy.keep_chars is not None:
        text += f" ({policy.keep_chars})"
    return text + (" + scan" if policy.scan else "")


def policy_review_matrix(schema: Schema) -> list[RevisionMatrix]:
    """Per live revision (newest first), every field with its policy and last reviewed change."""
    changes = _field_changes(schema)
    matrices = []
    revisions = schema.revisions.exclude(status=RevisionStatus.RETIRED).order_by("-version")
    for revision in revisions:
        policies = {p.path: p for p in revision.field_policies.all()}
        rows = []
        for path in revision_leaf_paths(revision):
            policy = policies.get(path)
            rows.append(
                MatrixRow(
                    path=path,
                    classification=policy.classification if policy else "",
                    action=policy.action if policy else "",
                    policy=_action_text(policy),
                    last_change=changes.get((str(revision.version), path)),
                    updated_at=policy.updated_at if policy else None,
                    unclassified=policy is None,
                    risky=policy is not None
                    and policy.classification in RISKY_CLASSIFICATIONS
                    and policy.action == RedactionAction.KEEP,
                )
            )
        matrices.append(RevisionMatrix(revision, rows))
    return matrices


@dataclass(frozen=True)
class ReviewStatus:
    target: str
    label: str
    last_review: PolicyReview | None
    last_approval: datetime | None
    since: datetime
    due: bool

    @property
    def days_since(self) -> int:
        return (timezone.now() - self.since).days


def policy_review_status(*, now: datetime | None = None) -> list[ReviewStatus]:
    """Every reviewable policy (field policies per schema, retention per event class), with
    whether it is due: no review and no approved change for ``POLICY_REVIEW_DAYS``."""
    now = now or timezone.now()
    limit = now - timedelta(days=telemetry_settings.POLICY_REVIEW_DAYS)
    reviews: dict[str, PolicyReview] = {}
    for review in PolicyReview.objects.select_related("reviewed_by").order_by("reviewed_at"):
        reviews[review.target] = review
    approvals = dict(
        ChangeRequest.objects.filter(status=ChangeStatus.APPLIED)
        .values("target")
        .annotate(last=Max("reviewed_at"))
        .values_list("target", "last")
    )
    candidates: list[tuple[str, str, datetime]] = [
        (schema_target(schema), f"Field policies of {schema.name}", schema.created_at)
        for schema in Schema.objects.filter(
            revisions__status__in=[
                RevisionStatus.ACTIVE,
                RevisionStatus.DEPRECATED,
                RevisionStatus.DRAFT,
            ]
        )
        .distinct()
        .order_by("name")
    ]
    candidates += [
        (f"event_class:{ec.name}", f"Retention of {ec.name}", ec.created_at)
        for ec in EventClass.objects.order_by("name")
    ]
    statuses = []
    for target, label, created in candidates:
        review = reviews.get(target)
        approval = approvals.get(target)
        since = max(
            d for d in (created, review.reviewed_at if review else None, approval) if d is not None
        )
        statuses.append(ReviewStatus(target, label, review, approval, since, since < limit))
    return statuses


# -- preview of a field-policy change ---------------------------------------------------


@dataclass
class PreviewEvent:
    event_id: str
    occurred_at: datetime
    current: str
    proposed: str
    note: str = ""


@dataclass
class RevisionPreview:
    revision: SchemaRevision
    events: list[PreviewEvent] = field(default_factory=list)
    # Changed fields whose stored values were already hashed, masked or dropped: what the
    # new policy would do with them can only show on new events.
    not_recoverable: list[str] = field(default_factory=list)


def _unclassified_spec() -> PolicySpec:
    if telemetry_settings.UNCLASSIFIED_FIELDS == "reject":
        return PolicySpec(Classification.INTERNAL, RedactionAction.REJECT_EVENT)
    return PolicySpec(Classification.INTERNAL, RedactionAction.DROP)


def proposed_specs(revision: SchemaRevision, fields: dict[str, Any]) -> dict[str, PolicySpec]:
    """The revision's policies with a change request's fields applied (None: unclassified)."""
    specs = field_policy_specs(revision)
    for path, raw in fields.items():
        if raw is None:
            specs.pop(path, None)
        else:
            specs[path] = PolicySpec(**raw)
    return specs


def _preview_plan(revision: SchemaRevision, current: dict, fields: dict):
    """A plan that re-renders stored (already redacted) events: only the changed fields
    whose stored value is still what the sender sent (kept), or that become dropped or
    rejected, get the new policy; every other field is left as stored."""
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    passthrough = PolicySpec(Classification.PUBLIC, RedactionAction.KEEP)
    specs = {path: passthrough for path in revision_leaf_paths(revision)}
    not_recoverable = []
    for path, raw in fields.items():
        new = _unclassified_spec() if raw is None else PolicySpec(**raw)
        old = current.get(path)
        if old == new:
            continue
        stored_raw = old is not None and old.action == RedactionAction.KEEP
        if stored_raw or new.action in (RedactionAction.DROP, RedactionAction.REJECT_EVENT):
            specs[path] = new
        else:
            not_recoverable.append(path)
    key_id = telemetry_settings.HASH_KEY_ID
    plan = redaction_plan_compile(
        compiled.descriptor,
        specs,
        key_id=key_id,
        key=telemetry_settings.HASH_KEYS[key_id],
        scanner=content_scanner_get(),
        sensitive_key=lambda key: False,
        unhashed_pseudonym="hash",
    )
    return compiled, plan, not_recoverable


def _render(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def change_request_preview(
    change_request: ChangeRequest, *, limit: int | None = None
) -> list[RevisionPreview]:
    """The latest stored events of the schema as stored now and under the proposed policy.

    Built from stored, already-redacted data only: nothing that was not kept can appear.
    """
    if change_request.kind != ChangeKind.FIELD_POLICIES:
        return []
    limit = telemetry_settings.CHANGE_PREVIEW_EVENTS if limit is None else limit
    schema = Schema.objects.filter(name=change_request.target.partition(":")[2]).first()
    if schema is None:
        return []
    previews = []
    for version, fields in change_request.payload.items():
        revision = schema.revisions.filter(version=int(version)).first()
        if revision is None:
            continue
        compiled, plan, not_recoverable = _preview_plan(
            revision, field_policy_specs(revision), fields
        )
        preview = RevisionPreview(revision, not_recoverable=not_recoverable)
        # Senders' events first: the platform's own audit events (of this very request,
        # among others) only when there is nothing else.
        stored = stored_events_latest(
            event_class=schema.event_class_id,
            revision_id=revision.pk,
            limit=limit,
            prefer_not_source=PLATFORM_SOURCE,
        )
        for event in stored:
            message = compiled.message_class()
            try:
                json_format.ParseDict(event.payload, message, ignore_unknown_fields=True)
            except json_format.ParseError:
                continue
            outcome = redact_message(plan, message)
            if outcome.rejection is not None:
                proposed, note = (
                    "",
                    f"rejected: {outcome.rejection.code} at {outcome.rejection.field}",
                )
            else:
                proposed = _render(
                    json_format.MessageToDict(message, preserving_proto_field_name=True)
                )
                note = ""
            preview.events.append(
                PreviewEvent(
                    event.event_id, event.occurred_at, _render(event.payload), proposed, note
                )
            )
        previews.append(preview)
    return previews
