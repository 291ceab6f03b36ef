"""The four-eyes workflow: draft, submit, approve or reject, apply, rebase, roll back, review.

Every step is one transaction that also writes its platform audit event. Applying
calls the configuration service of the change's kind (which bumps the policy epoch,
so ingest enforces the new policy within seconds) and records the target's new
version. A request is stale when its target moved on since it was written: it must be
rebased (and, if it was approved, approved again) before it can apply.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ..choices import OPEN_CHANGE_STATUSES, ChangeKind, ChangeStatus, RevisionStatus
from ..models import ChangeRequest, PolicyReview, PolicyVersion, Schema
from ..policies import PolicyDocument
from ..ports import audit_event_record
from ..selectors import field_policy_specs, revision_leaf_paths
from .change_kinds import (
    NEW_HOLD_TARGET,
    ChangeRequestError,
    kind_spec,
    target_lock,
)

MAX_REASON_CHARS = 2000
MAX_COMMENT_CHARS = 2000


def _require(actor: AbstractBaseUser, permission: str, doing: str) -> None:
    if not (actor.is_authenticated and actor.has_perm(f"governance.{permission}")):
        raise ChangeRequestError("permission_denied", f"you may not {doing}")


def _audit(
    event_name: str, change_request: ChangeRequest, actor: AbstractBaseUser, **extra: str
) -> None:
    audit_event_record(
        event_name=f"platform.change_request.{event_name}",
        actor=actor,
        attributes={
            "change_request": str(change_request.pk),
            "kind": change_request.kind,
            "target": change_request.target,
            "status": change_request.status,
            **extra,
        },
    )


def policy_version_current(target: str) -> int:
    """The target's latest recorded version (0 when no reviewed change applied yet)."""
    return PolicyVersion.objects.filter(target=target).aggregate(v=Max("version"))["v"] or 0


def _baseline_ensure(kind: str, target: str, state: Any) -> None:
    """Record the target's state before its first reviewed change, so it can be restored."""
    if target != NEW_HOLD_TARGET and not PolicyVersion.objects.filter(target=target).exists():
        PolicyVersion.objects.get_or_create(
            target=target, version=0, defaults={"kind": kind, "state": state}
        )


def _locked(change_request: ChangeRequest) -> ChangeRequest:
    return ChangeRequest.objects.select_for_update().get(pk=change_request.pk)


def _locked_for_author(
    change_request: ChangeRequest,
    actor: AbstractBaseUser,
    doing: str,
    allowed: tuple,
    *,
    may_propose: bool = True,
) -> ChangeRequest:
    """The request, locked, once ``actor`` is its author and its status is ``allowed``.

    With ``may_propose`` the author must still hold the propose permission: a role taken
    away also takes away submitting and rebasing what they drafted before.
    """
    change_request = _locked(change_request)
    if change_request.author_id != actor.pk:
        raise ChangeRequestError("not_author", f"only the author can {doing} this change request")
    if may_propose:
        _require(actor, "propose_changerequest", f"{doing} change requests")
    if change_request.status not in allowed:
        raise ChangeRequestError(
            "not_open", f"cannot {doing} a {change_request.status} change request"
        )
    return change_request


@transaction.atomic
def change_request_draft(
    *,
    kind: str,
    target: str,
    payload: Any,
    reason: str,
    actor: AbstractBaseUser,
    submit: bool = True,
    restores_version: int | None = None,
) -> ChangeRequest:
    """Propose a change to one target; submitted for review unless ``submit`` is False.

    The payload is validated now (a regex that does not compile, an unknown field, a
    retention outside the guard rails, a forbidden lifecycle move are refused here) and
    again when it applies. Nothing changes until a second person approves it.
    """
    _require(actor, "propose_changerequest", "propose policy changes")
    reason = (reason or "").strip()
    if not reason:
        raise ChangeRequestError("reason_required", "say why this change is needed")
    if len(reason) > MAX_REASON_CHARS:
        raise ChangeRequestError("reason_too_long", f"at most {MAX_REASON_CHARS} characters")
    spec = kind_spec(kind)
    payload = spec.validate(target, payload)
    state = spec.state(target)
    base = spec.relevant(state, payload)
    if target != NEW_HOLD_TARGET and base == payload:
        raise ChangeRequestError("no_change", "the proposal is the same as the current policy")
    _baseline_ensure(kind, target, state)
    now = timezone.now()
    change_request = ChangeRequest.objects.create(
        kind=kind,
        target=target,
        summary=spec.summary(target, payload)[:300],
        reason=reason,
        payload=payload,
        base_state=base,
        base_version=policy_version_current(target),
        status=ChangeStatus.SUBMITTED if submit else ChangeStatus.DRAFT,
        submitted_at=now if submit else None,
        author=actor,
        restores_version=restores_version,
    )
    _audit("submitted" if submit else "drafted", change_request, actor)
    return change_request


@transaction.atomic
def change_request_submit(
    *, change_request: ChangeRequest, actor: AbstractBaseUser
) -> ChangeRequest:
    """Send a draft for review (its author only, while they may still propose)."""
    change_request = _locked_for_author(change_request, actor, "submit", (ChangeStatus.DRAFT,))
    change_request.status = ChangeStatus.SUBMITTED
    change_request.submitted_at = timezone.now()
    change_request.save(update_fields=["status", "submitted_at"])
    _audit("submitted", change_request, actor)
    return change_request


def stale_reason(change_request: ChangeRequest) -> str:
    """Why the request no longer fits its target (empty when it still does)."""
    if change_request.target == NEW_HOLD_TARGET:
        return ""
    current = policy_version_current(change_request.target)
    if current != change_request.base_version:
        return (
            f"{change_request.target} moved from version {change_request.base_version} to "
            f"{current} since this request was written: rebase it"
        )
    spec = kind_spec(change_request.kind)
    try:
        state = spec.state(change_request.target)
    except ChangeRequestError as exc:
        return exc.message
    if spec.relevant(state, change_request.payload) != change_request.base_state:
        return f"{change_request.target} was changed since this request was written: rebase it"
    return ""


def _check_not_stale(change_request: ChangeRequest) -> None:
    reason = stale_reason(change_request)
    if reason:
        raise ChangeRequestError("stale", reason)


def _check_reviewer(change_request: ChangeRequest, actor: AbstractBaseUser, doing: str) -> None:
    if change_request.author_id == actor.pk:
        raise ChangeRequestError(
            "own_change", f"you cannot {doing} your own change request: a second person must"
        )
    _require(actor, "approve_changerequest", f"{doing} change requests")


@transaction.atomic
def change_request_approve(
    *,
    change_request: ChangeRequest,
    actor: AbstractBaseUser,
    comment: str = "",
    apply: bool = False,
) -> ChangeRequest:
    """Approve someone else's submitted request; with ``apply`` it also takes effect now."""
    target_lock(change_request.target)
    change_request = _locked(change_request)
    _check_reviewer(change_request, actor, "approve")
    if change_request.status == ChangeStatus.APPROVED:
        raise ChangeRequestError("already_approved", "this change request is already approved")
    if change_request.status != ChangeStatus.SUBMITTED:
        raise ChangeRequestError(
            "not_submitted",
            f"only submitted requests can be approved; it is {change_request.status}",
        )
    _check_not_stale(change_request)
    change_request.status = ChangeStatus.APPROVED
    change_request.reviewer = actor
    change_request.reviewed_at = timezone.now()
    change_request.review_comment = (comment or "").strip()[:MAX_COMMENT_CHARS]
    change_request.save(update_fields=["status", "reviewer", "reviewed_at", "review_comment"])
    _audit("approved", change_request, actor)
    if apply:
        return change_request_apply(change_request=change_request, actor=actor)
    return change_request


@transaction.atomic
def change_request_reject(
    *, change_request: ChangeRequest, actor: AbstractBaseUser, comment: str
) -> ChangeRequest:
    """Refuse someone else's submitted (or approved, not yet applied) request, saying why."""
    change_request = _locked(change_request)
    _check_reviewer(change_request, actor, "reject")
    comment = (comment or "").strip()
    if not comment:
        raise ChangeRequestError("comment_required", "say why the change is rejected")
    if change_request.status not in (ChangeStatus.SUBMITTED, ChangeStatus.APPROVED):
        raise ChangeRequestError(
            "not_submitted",
            f"only submitted requests can be rejected; it is {change_request.status}",
        )
    change_request.status = ChangeStatus.REJECTED
    change_request.reviewer = actor
    change_request.reviewed_at = timezone.now()
    change_request.review_comment = comment[:MAX_COMMENT_CHARS]
    change_request.save(update_fields=["status", "reviewer", "reviewed_at", "review_comment"])
    _audit("rejected", change_request, actor)
    return change_request


@transaction.atomic
def change_request_withdraw(
    *, change_request: ChangeRequest, actor: AbstractBaseUser
) -> ChangeRequest:
    """The author takes back a request that has not applied."""
    change_request = _locked_for_author(
        change_request, actor, "withdraw", OPEN_CHANGE_STATUSES, may_propose=False
    )
    change_request.status = ChangeStatus.WITHDRAWN
    change_request.save(update_fields=["status"])
    _audit("withdrawn", change_request, actor)
    return change_request


@transaction.atomic
def change_request_apply(
    *, change_request: ChangeRequest, actor: AbstractBaseUser
) -> ChangeRequest:
    """Make an approved change take effect, atomically, and record the target's new version."""
    _require(actor, "apply_changerequest", "apply change requests")
    target_lock(change_request.target)
    change_request = _locked(change_request)
    if change_request.status == ChangeStatus.REJECTED:
        raise ChangeRequestError("rejected", "a rejected change request cannot be applied")
    if change_request.status == ChangeStatus.APPLIED:
        raise ChangeRequestError("already_applied", "this change request has already applied")
    if change_request.status != ChangeStatus.APPROVED:
        raise ChangeRequestError(
            "not_approved", f"only approved requests can be applied; it is {change_request.status}"
        )
    _check_not_stale(change_request)
    spec = kind_spec(change_request.kind)
    payload = spec.validate(change_request.target, change_request.payload)
    outcome = spec.apply(change_request.target, payload, actor, change_request.author)
    if change_request.target == NEW_HOLD_TARGET:
        change_request.target = outcome  # the new hold's own target, for its release later
    version = policy_version_current(change_request.target) + 1
    PolicyVersion.objects.create(
        target=change_request.target,
        kind=change_request.kind,
        version=version,
        state=spec.state(change_request.target),
        change_request=change_request,
    )
    change_request.status = ChangeStatus.APPLIED
    change_request.applied_by = actor
    change_request.applied_at = timezone.now()
    change_request.applied_version = version
    change_request.save(
        update_fields=["status", "applied_by", "applied_at", "applied_version", "target"]
    )
    _audit("applied", change_request, actor, version=str(version), changes=outcome[:300])
    return change_request


@transaction.atomic
def change_request_rebase(
    *, change_request: ChangeRequest, actor: AbstractBaseUser
) -> ChangeRequest:
    """Re-base a stale request on its target's current state; an approval must be given again.

    Its author only, while they may still propose (withdrawing needs no permission).
    """
    change_request = _locked_for_author(change_request, actor, "rebase", OPEN_CHANGE_STATUSES)
    spec = kind_spec(change_request.kind)
    payload = spec.validate(change_request.target, change_request.payload)
    base = spec.relevant(spec.state(change_request.target), payload)
    if base == payload:
        raise ChangeRequestError(
            "no_change", "the target already has this policy: withdraw the request instead"
        )
    change_request.payload = payload
    change_request.base_state = base
    change_request.base_version = policy_version_current(change_request.target)
    if change_request.status == ChangeStatus.APPROVED:
        change_request.status = ChangeStatus.SUBMITTED
        change_request.reviewer = None
        change_request.reviewed_at = None
        change_request.review_comment = ""
    change_request.save()
    _audit("rebased", change_request, actor, base_version=str(change_request.base_version))
    return change_request


@transaction.atomic
def change_request_restore(
    *, target: str, version: int, reason: str, actor: AbstractBaseUser
) -> ChangeRequest:
    """Roll back: a new (submitted) change request whose proposal is an earlier version."""
    recorded = PolicyVersion.objects.filter(target=target, version=version).first()
    if recorded is None:
        raise ChangeRequestError("unknown_version", f"{target} has no version {version}")
    spec = kind_spec(recorded.kind)
    if not spec.restorable:
        raise ChangeRequestError("not_restorable", f"{recorded.kind} changes cannot be rolled back")
    payload = restore_payload(recorded.kind, target, recorded.state)
    return change_request_draft(
        kind=recorded.kind,
        target=target,
        payload=payload,
        reason=reason or f"Roll back {target} to version {version}",
        actor=actor,
        restores_version=version,
    )


def restore_payload(kind: str, target: str, old_state: Any) -> Any:
    """The proposal that brings ``target`` back to ``old_state``."""
    spec = kind_spec(kind)
    current = spec.state(target)
    if kind == ChangeKind.FIELD_POLICIES:
        payload: dict[str, dict[str, Any]] = {}
        for version, fields in (current or {}).items():
            old_fields = (old_state or {}).get(version)
            if old_fields is None:
                continue  # a revision registered since: nothing to restore
            changed = {
                path: old_fields.get(path)
                for path in set(fields) | set(old_fields)
                if fields.get(path) != old_fields.get(path)
            }
            if changed:
                payload[version] = changed
        return payload
    if kind == ChangeKind.SCANNER_RULE and old_state is None:
        if current is None:
            return None
        return {**current, "enabled": False}  # the rule did not exist: switch it off
    return old_state


@transaction.atomic
def policy_review_mark(*, target: str, actor: AbstractBaseUser, comment: str = "") -> PolicyReview:
    """Record that ``actor`` reviewed the target's policy and found it right."""
    _require(actor, "review_policy", "mark policies as reviewed")
    review = PolicyReview.objects.create(
        target=target, reviewed_by=actor, comment=(comment or "").strip()[:MAX_COMMENT_CHARS]
    )
    audit_event_record(
        event_name="platform.policy.reviewed", actor=actor, attributes={"target": target}
    )
    return review


def policy_document_propose(
    *, document: PolicyDocument, reason: str, actor: AbstractBaseUser
) -> ChangeRequest:
    """Policy as code: a submitted change request for a YAML document's field policies.

    The document applies to its schema's live revisions (or the one it names); each
    path must exist in at least one of them, and only the fields that differ from the
    current policies are proposed.
    """
    schema = Schema.objects.filter(name=document.schema).first()
    if schema is None:
        raise ChangeRequestError("invalid_change", f"no schema named {document.schema!r}")
    revisions = schema.revisions.exclude(status=RevisionStatus.RETIRED).order_by("version")
    if document.version is not None:
        revisions = revisions.filter(version=document.version)
    if not revisions:
        raise ChangeRequestError(
            "invalid_change", f"{document.schema} has no live revision to apply to"
        )
    payload: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for revision in revisions:
        known = set(revision_leaf_paths(revision))
        current = field_policy_specs(revision)
        changed = {
            path: asdict(spec)
            for path, spec in document.fields.items()
            if path in known and current.get(path) != spec
        }
        seen |= known & set(document.fields)
        if changed:
            payload[str(revision.version)] = changed
    unknown = sorted(set(document.fields) - seen)
    if unknown:
        raise ChangeRequestError(
            "invalid_change", f"{document.schema} has no field " + ", ".join(map(repr, unknown))
        )
    if not payload:
        raise ChangeRequestError("no_change", "the document matches the current policies")
    return change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=f"schema:{schema.name}",
        payload=payload,
        reason=reason,
        actor=actor,
    )
