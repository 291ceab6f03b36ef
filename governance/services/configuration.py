"""Writes of the governance configuration: classes, schemas, policies, retention, metrics.

These apply a change at once; people reach them through reviewed change requests
(``change_requests.py``), the registry and the configuration load call them directly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from telemetry_platform.conf import telemetry_settings

from ..choices import RevisionStatus
from ..hashing import keyed_hash_candidates
from ..metric_plans import MetricDefinitionError, metric_compile
from ..models import (
    EventClass,
    FieldPolicy,
    LegalHold,
    MetricDefinition,
    PolicyEpoch,
    RetentionOverride,
    ScannerRule,
    Schema,
    SchemaRevision,
)
from ..policies import (
    PolicyDocument,
)
from ..ports import audit_event_record, event_class_partition_ensure
from ..redaction import PolicySpec
from ..scanners import validate_custom_pattern
from ..schemas import load_schema
from ..selectors import (
    POLICY_EPOCH,
    SUPPRESSION_EPOCH,
    field_policy_specs,
    metric_definition_dict,
    revision_leaf_paths,
)

logger = logging.getLogger(__name__)


def policy_epoch_bump() -> int:
    """Move the policy epoch on, in the caller's transaction; return the new value."""
    return _epoch_bump(POLICY_EPOCH)


def suppression_epoch_bump() -> int:
    """Move the suppression epoch on (the suppression list changed, nothing else).

    Processes then reload only the list of suppressed subjects, not every compiled
    plan: a suppression must not make every web worker recompile at once.
    """
    return _epoch_bump(SUPPRESSION_EPOCH)


def _epoch_bump(pk: int) -> int:
    updated = PolicyEpoch.objects.filter(pk=pk).update(value=F("value") + 1)
    if not updated:
        PolicyEpoch.objects.get_or_create(pk=pk, defaults={"value": 1})
    return PolicyEpoch.objects.get(pk=pk).value


@transaction.atomic
def event_class_ensure(
    *, name: str, retention_days: int, description: str = ""
) -> tuple[EventClass, bool]:
    """Create the event class and its storage partition if missing; never change an existing one."""
    event_class, created = EventClass.objects.get_or_create(
        name=name, defaults={"retention_days": retention_days, "description": description}
    )
    event_class_partition_ensure(name)
    return event_class, created


class RetentionError(Exception):
    """A retention change outside the guard rails, or otherwise refused."""


def retention_limits_for(event_class: str) -> tuple[int, int]:
    """The (minimum, maximum) retention days settings allow for ``event_class``."""
    limits = telemetry_settings.RETENTION_LIMITS
    low, high = limits.get(event_class) or limits.get("*") or (1, 36500)
    return int(low), int(high)


def _check_retention(event_class: str, retention_days: int) -> None:
    low, high = retention_limits_for(event_class)
    if not low <= retention_days <= high:
        raise RetentionError(
            f"{event_class} retention must be between {low} and {high} days "
            "(TELEMETRY_RETENTION_LIMITS)"
        )


@transaction.atomic
def event_class_retention_update(
    *, event_class: EventClass, retention_days: int, actor: AbstractBaseUser | None
) -> EventClass:
    """Set how many days events of a class are kept, within the guard rails; audited."""
    _check_retention(event_class.name, retention_days)
    previous = event_class.retention_days
    if previous == retention_days:
        return event_class
    event_class.retention_days = retention_days
    event_class.full_clean()
    event_class.save(update_fields=["retention_days", "updated_at"])
    policy_epoch_bump()
    audit_event_record(
        event_name="platform.retention.updated",
        actor=actor,
        attributes={
            "event_class": event_class.name,
            "old_retention_days": str(previous),
            "new_retention_days": str(retention_days),
        },
    )
    return event_class


# Lifecycle: a retired revision stays retired; everything else may move forward or back.
ALLOWED_TRANSITIONS = {
    RevisionStatus.DRAFT: {RevisionStatus.ACTIVE, RevisionStatus.RETIRED},
    RevisionStatus.ACTIVE: {RevisionStatus.DEPRECATED, RevisionStatus.RETIRED},
    RevisionStatus.DEPRECATED: {RevisionStatus.ACTIVE, RevisionStatus.RETIRED},
    RevisionStatus.RETIRED: set(),
}


class LifecycleError(Exception):
    """The requested status change is not allowed."""


@transaction.atomic
def schema_revision_status_change(
    *, revision: SchemaRevision, status: str, actor: AbstractBaseUser | None
) -> SchemaRevision:
    """Move a revision along draft -> active -> deprecated -> retired; ingest follows in seconds."""
    revision = SchemaRevision.objects.select_for_update().get(pk=revision.pk)
    if status == revision.status:
        return revision
    if status not in ALLOWED_TRANSITIONS.get(revision.status, set()):
        raise LifecycleError(
            f"{revision} cannot move from {revision.status} to {status}"
            + ("" if status in RevisionStatus.values else " (unknown status)")
        )
    previous = revision.status
    revision.status = status
    revision.save(update_fields=["status"])
    policy_epoch_bump()
    audit_event_record(
        event_name="platform.schema.status_changed",
        actor=actor,
        attributes={
            "schema": revision.schema.name,
            "version": str(revision.version),
            "old_status": previous,
            "new_status": status,
        },
    )
    return revision


# -- field policies -------------------------------------------------------------------


class PolicyApplyError(Exception):
    """A policy change was refused; ``errors`` names every problem. Nothing changed."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def policy_describe(spec: PolicySpec | None) -> str:
    """A policy as one short line of text (classification/action, kept characters, scan)."""
    if spec is None:
        return "unclassified"
    text = f"{spec.classification}/{spec.action}"
    if spec.keep_chars is not None:
        text += f"({spec.keep_chars})"
    return text + (" +scan" if spec.scan else "")


@transaction.atomic
def field_policies_set(
    *,
    revision: SchemaRevision,
    policies: Mapping[str, PolicySpec],
    actor: AbstractBaseUser | None,
) -> list[str]:
    """Set the policies of some field paths of one revision; return what changed, a line each.

    Paths the revision does not have are refused, all of them named, and nothing changes.
    """
    known = set(revision_leaf_paths(revision))
    unknown = sorted(set(policies) - known)
    if unknown:
        raise PolicyApplyError([f"{revision} has no field {path!r}" for path in unknown])
    current = field_policy_specs(revision)
    changes = []
    user = actor if actor is not None and actor.is_authenticated else None
    for path in sorted(policies):
        spec = policies[path]
        if current.get(path) == spec:
            continue
        FieldPolicy.objects.update_or_create(
            revision=revision, path=path, defaults={**asdict(spec), "updated_by": user}
        )
        before, after = policy_describe(current.get(path)), policy_describe(spec)
        changes.append(f"{revision} {path}: {before} -> {after}")
    if changes:
        policy_epoch_bump()
        audit_event_record(
            event_name="platform.field_policy.changed",
            actor=actor,
            attributes={
                "schema": revision.schema.name,
                "version": str(revision.version),
                "paths": ",".join(sorted(p for p in policies if current.get(p) != policies[p])),
            },
        )
    return changes


@transaction.atomic
def policy_document_apply(*, document: PolicyDocument, actor: AbstractBaseUser | None) -> list[str]:
    """Apply a policy-as-code document to its schema's live revisions (or the one named).

    Every path must exist in the target revision(s); otherwise nothing changes and the
    unknown paths are listed.
    """
    schema = Schema.objects.filter(name=document.schema).first()
    if schema is None:
        raise PolicyApplyError([f"no schema named {document.schema!r}"])
    revisions = schema.revisions.exclude(status=RevisionStatus.RETIRED).order_by("version")
    if document.version is not None:
        revisions = revisions.filter(version=document.version)
    revisions = list(revisions)
    if not revisions:
        raise PolicyApplyError([f"{document.schema} has no live revision to apply to"])
    known = {revision.pk: set(revision_leaf_paths(revision)) for revision in revisions}
    everywhere = set().union(*known.values())
    unknown = sorted(set(document.fields) - everywhere)
    if unknown:
        raise PolicyApplyError([f"{document.schema} has no field {path!r}" for path in unknown])
    changes = []
    for revision in revisions:
        applicable = {p: s for p, s in document.fields.items() if p in known[revision.pk]}
        changes.extend(field_policies_set(revision=revision, policies=applicable, actor=actor))
    return changes


@transaction.atomic
def scanner_rule_save(*, rule: ScannerRule, actor: AbstractBaseUser | None) -> ScannerRule:
    """Validate and save a custom content scanner; ingest uses it within seconds."""
    try:
        validate_custom_pattern(rule.pattern)
    except ValueError as exc:
        raise PolicyApplyError([str(exc)]) from exc
    created = rule.pk is None
    rule.full_clean()
    rule.save()
    policy_epoch_bump()
    audit_event_record(
        event_name="platform.scanner_rule.created" if created else "platform.scanner_rule.changed",
        actor=actor,
        attributes={"rule": rule.name, "action": rule.action, "enabled": str(rule.enabled)},
    )
    return rule


# -- retention overrides and legal holds ----------------------------------------------

# Advisory lock key between placing holds and the purge: a hold's transaction takes it
# exclusive; a purge batch takes it shared before it commits and redoes its work if a hold
# was placed meanwhile (ingest/retention.py). First 8 bytes of sha256("legal_holds").
LEGAL_HOLD_LOCK_KEY = int.from_bytes(bytes.fromhex("9d5a2a3f9f251288"), "big", signed=True)


@transaction.atomic
def retention_override_set(
    *, schema: Schema, retention_days: int | None, reason: str, actor: AbstractBaseUser | None
) -> RetentionOverride | None:
    """Keep one schema's events for ``retention_days`` (None removes the override); audited."""
    existing = RetentionOverride.objects.filter(schema=schema).first()
    if retention_days is None:
        if existing is not None:
            existing.delete()
    else:
        _check_retention(schema.event_class_id, retention_days)
        existing, _ = RetentionOverride.objects.update_or_create(
            schema=schema,
            defaults={
                "retention_days": retention_days,
                "reason": reason,
                "updated_by": actor if actor is not None and actor.is_authenticated else None,
            },
        )
    policy_epoch_bump()
    audit_event_record(
        event_name="platform.retention.override_set",
        actor=actor,
        attributes={
            "schema": schema.name,
            "retention_days": "class default" if retention_days is None else str(retention_days),
        },
    )
    return existing if retention_days is not None else None


@transaction.atomic
def legal_hold_create(
    *,
    reason: str,
    owner: AbstractBaseUser,
    event_class: EventClass | None = None,
    schema: Schema | None = None,
    actor_identifier: str = "",
    actor_hashes: Sequence[str] = (),
    occurred_from: datetime | None = None,
    occurred_to: datetime | None = None,
    expires_at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> LegalHold:
    """Place a hold: matching events are never purged while it is active.

    The raw actor identifier is hashed under every configured key (so rows hashed
    before a key rotation match too) and never stored; a reviewed change request
    carries the hashes instead. ``actor`` (default: the owner) is who placed it.
    """
    hashes = list(actor_hashes)
    if actor_identifier:
        hashes.extend(keyed_hash_candidates(actor_identifier, keys=telemetry_settings.HASH_KEYS))
    if not (event_class or schema or hashes or occurred_from or occurred_to):
        raise RetentionError("a hold needs at least one criterion")
    if occurred_from and occurred_to and occurred_from >= occurred_to:
        raise RetentionError("the hold's time range ends before it starts")
    # Held until this transaction ends: no purge batch commits between now and then
    # without seeing the hold (the one in flight redoes its work under it).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LEGAL_HOLD_LOCK_KEY])
    hold = LegalHold.objects.create(
        reason=reason,
        owner=owner,
        event_class=event_class,
        schema=schema,
        actor_hashes=hashes,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        expires_at=expires_at,
    )
    audit_event_record(
        event_name="platform.legal_hold.placed",
        actor=actor or owner,
        attributes={"hold": str(hold.pk), "reason": reason},
    )
    return hold


@transaction.atomic
def legal_hold_release(*, hold: LegalHold, actor: AbstractBaseUser | None) -> LegalHold:
    """Release a hold; its events become eligible at the next purge."""
    if hold.released_at is None:
        hold.released_at = timezone.now()
        hold.save(update_fields=["released_at"])
        audit_event_record(
            event_name="platform.legal_hold.released",
            actor=actor,
            attributes={"hold": str(hold.pk)},
        )
    return hold


# -- metric catalogue -----------------------------------------------------------------


def metric_definition_check(definition: MetricDefinition) -> None:
    """Raise MetricDefinitionError unless the metric compiles against its schema's newest
    live revision and policies (labels only from fields that may become labels)."""
    revision = (
        definition.schema.revisions.exclude(status=RevisionStatus.RETIRED)
        .order_by("-version")
        .first()
    )
    if revision is None:
        raise MetricDefinitionError([f"{definition.schema} has no live revision"])
    classifications = {p: s.classification for p, s in field_policy_specs(revision).items()}
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    metric_compile(metric_definition_dict(definition), compiled.descriptor, classifications)


@transaction.atomic
def metric_definition_save(
    *, definition: MetricDefinition, actor: AbstractBaseUser | None
) -> MetricDefinition:
    """Check and save a catalogue metric; ingest picks the change up within seconds."""
    metric_definition_check(definition)
    definition.full_clean()
    definition.save()
    policy_epoch_bump()
    audit_event_record(
        event_name="platform.metric_definition.saved",
        actor=actor,
        attributes={"metric": definition.name, "schema": definition.schema.name},
    )
    return definition


@transaction.atomic
def metric_definition_delete(
    *, definition: MetricDefinition, actor: AbstractBaseUser | None
) -> None:
    """Remove a catalogue metric; ingest stops computing it within seconds."""
    name, schema = definition.name, definition.schema.name
    definition.delete()
    policy_epoch_bump()
    audit_event_record(
        event_name="platform.metric_definition.deleted",
        actor=actor,
        attributes={"metric": name, "schema": schema},
    )


# -- breaking-change rules ------------------------------------------------------------


@transaction.atomic
def schema_breaking_rules_set(
    *,
    schema: Schema,
    category: str,
    ignore: Sequence[str],
    ignore_only: Mapping[str, Sequence[str]],
    ignore_unstable_packages: bool,
    actor: AbstractBaseUser | None,
) -> Schema:
    """Set the buf rule set a schema's new revisions are checked with; audited."""
    schema.breaking_category = category
    schema.breaking_ignore = list(ignore)
    schema.breaking_ignore_only = {rule: list(paths) for rule, paths in ignore_only.items()}
    schema.breaking_ignore_unstable_packages = ignore_unstable_packages
    schema.full_clean()
    schema.save(
        update_fields=[
            "breaking_category",
            "breaking_ignore",
            "breaking_ignore_only",
            "breaking_ignore_unstable_packages",
        ]
    )
    audit_event_record(
        event_name="platform.schema.breaking_rules_changed",
        actor=actor,
        attributes={"schema": schema.name, "category": category},
    )
    return schema
