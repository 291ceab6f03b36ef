"""Writes of the governance configuration: classes, schemas, policies, retention, metrics.

These apply a change at once; people reach them through reviewed change requests
(``change_requests.py``), the registry and the configuration load call them directly.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from audit.services import audit_event_record
from telemetry_platform.conf import telemetry_settings

from ..choices import ChangeKind, RevisionStatus
from ..compatibility import Violation, check_against_history
from ..defaults import DEFAULT_EVENT_CLASSES, PLATFORM_SCHEMAS, platform_proto_sources
from ..hashing import keyed_hash_candidates
from ..metric_plans import MetricDefinitionError, metric_compile
from ..models import (
    ChangeRequest,
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
    PolicySeed,
    WithheldAnnotation,
    annotated_policies,
    field_policies_seed,
)
from ..protoc import ProtoCompileError, compile_protos_serialized
from ..redaction import PolicySpec
from ..scanners import validate_custom_pattern
from ..schemas import SchemaDefinitionError, derive_roles, load_schema
from ..selectors import field_policy_specs, metric_definition_dict, revision_leaf_paths

logger = logging.getLogger(__name__)


class SchemaRegistrationError(Exception):
    """Registration refused; ``code`` names the reason, ``errors`` lists the details.

    ``violations`` holds the compatibility violations when ``code`` is
    ``incompatible_change``. Nothing is stored when this is raised.
    """

    def __init__(
        self, code: str, errors: list[str], *, violations: list[Violation] | None = None
    ) -> None:
        self.code = code
        self.errors = errors
        self.violations = violations or []
        super().__init__(f"{code}: " + "; ".join(errors))


def policy_epoch_bump() -> int:
    """Move the policy epoch on, in the caller's transaction; return the new value."""
    updated = PolicyEpoch.objects.filter(pk=1).update(value=F("value") + 1)
    if not updated:
        PolicyEpoch.objects.get_or_create(pk=1, defaults={"value": 1})
    return PolicyEpoch.objects.get(pk=1).value


@transaction.atomic
def event_class_ensure(
    *, name: str, retention_days: int, description: str = ""
) -> tuple[EventClass, bool]:
    """Create the event class and its storage partition if missing; never change an existing one."""
    from ingest.partitions import event_class_partition_ensure

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


@dataclass(frozen=True)
class RegisteredRevision:
    """The registered revision, and what its annotations could not change at once.

    ``withheld``: annotations weaker than the previous revision's reviewed policy; that
    policy stays in force and ``change_request`` (None when the actor may not propose,
    e.g. the configuration load) proposes them for review. ``tightened``: paths whose
    stricter annotation applied at once.
    """

    revision: SchemaRevision
    created: bool
    withheld: tuple[WithheldAnnotation, ...] = ()
    tightened: tuple[str, ...] = ()
    change_request: ChangeRequest | None = None


def _compile_event_schema(
    proto_files: Mapping[str, str], message_name: str, roles: Mapping[str, str] | None
) -> tuple[bytes, dict[str, str]]:
    try:
        serialized = compile_protos_serialized(proto_files)
    except ProtoCompileError as exc:
        raise SchemaRegistrationError("proto_compile_error", exc.errors) from exc
    try:
        compiled = load_schema(serialized, message_name)
    except SchemaDefinitionError as exc:
        raise SchemaRegistrationError("message_not_found", exc.errors) from exc
    try:
        return serialized, derive_roles(compiled, dict(roles or {}))
    except SchemaDefinitionError as exc:
        raise SchemaRegistrationError("invalid_roles", exc.errors) from exc


def _resolve_schema(name: str, event_class: str | None, description: str) -> Schema:
    schema = Schema.objects.select_for_update().filter(name=name).first()
    if schema is not None:
        if event_class and schema.event_class_id != event_class:
            raise SchemaRegistrationError(
                "event_class_mismatch",
                [f"schema {name!r} belongs to event class {schema.event_class_id!r}"],
            )
        return schema
    if not event_class:
        raise SchemaRegistrationError(
            "event_class_required", [f"schema {name!r} is new: name its event class"]
        )
    klass = EventClass.objects.filter(name=event_class).first()
    if klass is None:
        known = ", ".join(EventClass.objects.order_by("name").values_list("name", flat=True))
        raise SchemaRegistrationError(
            "unknown_event_class", [f"no event class {event_class!r}; known: {known}"]
        )
    try:
        Schema(name=name, event_class=klass).full_clean(exclude=["event_class"])
    except ValidationError as exc:
        raise SchemaRegistrationError("invalid_schema_name", exc.messages) from exc
    return Schema.objects.create(name=name, event_class=klass, description=description)


def schema_compatibility_check(
    *,
    schema: Schema,
    descriptor_set: bytes,
    message_name: str,
    proto_files: Collection[str] | None = None,
) -> list[Violation]:
    """Check a candidate revision against every earlier revision of ``schema`` (transitive),
    under the schema's rule set; ``proto_files`` names the candidate's own files (the
    sources, not their imports; default: every file in the set)."""
    history = []
    old_messages = {}
    old_files = {}
    for revision in schema.revisions.order_by("version"):
        history.append(
            (revision.version, FileDescriptorSet.FromString(bytes(revision.descriptor_set)))
        )
        old_messages[revision.version] = revision.message_name
        old_files[revision.version] = set(revision.proto_files)
    if not history:
        return []
    return check_against_history(
        history=history,
        new=FileDescriptorSet.FromString(descriptor_set),
        message=message_name,
        old_messages=old_messages,
        rule_set=schema.breaking_rule_set(),
        old_files=old_files,
        new_files=set(proto_files) if proto_files is not None else None,
    )


@transaction.atomic
def schema_register(
    *,
    name: str,
    proto_files: Mapping[str, str],
    message_name: str,
    event_class: str | None = None,
    roles: Mapping[str, str] | None = None,
    status: str = RevisionStatus.ACTIVE,
    description: str = "",
    actor: AbstractBaseUser | None,
) -> RegisteredRevision:
    """Compile ``proto_files`` and register the message as a new revision of schema ``name``.

    The new revision must be wire- and JSON-compatible with every earlier revision;
    breaking changes need a new schema name. Registering sources identical to the
    latest revision's is a no-op, so the configuration load can run on every deploy.
    """
    from ingest.metrics import SCHEMA_REGISTRATIONS

    try:
        registered = _schema_register(
            name=name,
            proto_files=proto_files,
            message_name=message_name,
            event_class=event_class,
            roles=roles,
            status=status,
            description=description,
            actor=actor,
        )
    except SchemaRegistrationError as exc:
        SCHEMA_REGISTRATIONS.labels("refused", exc.code).inc()
        raise
    SCHEMA_REGISTRATIONS.labels("created" if registered.created else "unchanged", "").inc()
    return registered


def _schema_register(
    *,
    name: str,
    proto_files: Mapping[str, str],
    message_name: str,
    event_class: str | None,
    roles: Mapping[str, str] | None,
    status: str,
    description: str,
    actor: AbstractBaseUser | None,
) -> RegisteredRevision:
    if status not in RevisionStatus.values:
        raise SchemaRegistrationError("invalid_status", [f"unknown status {status!r}"])
    serialized, derived_roles = _compile_event_schema(proto_files, message_name, roles)
    schema = _resolve_schema(name, event_class, description)
    latest = schema.revisions.order_by("-version").first()
    if (
        latest is not None
        and bytes(latest.descriptor_set) == serialized
        and latest.message_name == message_name
        and latest.roles == derived_roles
    ):
        return RegisteredRevision(latest, created=False)
    violations = schema_compatibility_check(
        schema=schema,
        descriptor_set=serialized,
        message_name=message_name,
        proto_files=list(proto_files),
    )
    if violations:
        raise SchemaRegistrationError(
            "incompatible_change", [v.describe() for v in violations], violations=violations
        )
    revision = SchemaRevision.objects.create(
        schema=schema,
        version=(latest.version + 1) if latest else 1,
        status=status,
        message_name=message_name,
        proto_files=dict(proto_files),
        descriptor_set=serialized,
        roles=derived_roles,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    seed = field_policies_seed(
        load_schema(serialized, message_name),
        roles=derived_roles,
        previous=field_policy_specs(latest) if latest else {},
        previous_annotations=annotated_policies(
            load_schema(bytes(latest.descriptor_set), latest.message_name)
        )
        if latest
        else {},
    )
    FieldPolicy.objects.bulk_create(
        FieldPolicy(revision=revision, path=path, **asdict(spec))
        for path, spec in seed.policies.items()
    )
    policy_epoch_bump()
    change_request = _loosening_propose(revision, seed, actor) if seed.withheld else None
    attributes = {
        "schema": name,
        "version": str(revision.version),
        "message": message_name,
        "status": status,
    }
    if seed.withheld:
        attributes["policies_withheld"] = ",".join(w.path for w in seed.withheld)
    if seed.tightened:
        attributes["policies_tightened"] = ",".join(seed.tightened)
    if change_request is not None:
        attributes["change_request"] = str(change_request.pk)
    audit_event_record(event_name="platform.schema.registered", actor=actor, attributes=attributes)
    return RegisteredRevision(
        revision,
        created=True,
        withheld=seed.withheld,
        tightened=seed.tightened,
        change_request=change_request,
    )


def _loosening_propose(
    revision: SchemaRevision, seed: PolicySeed, actor: AbstractBaseUser | None
) -> ChangeRequest | None:
    """A submitted change request for the withheld annotations, authored by ``actor``;
    None when nobody who may propose registered (the reviewed policy simply stays)."""
    if not (
        actor is not None
        and actor.is_authenticated
        and actor.has_perm("governance.propose_changerequest")
    ):
        return None
    from .change_requests import change_request_draft  # the workflow builds on this module

    paths = ", ".join(w.path for w in seed.withheld)
    return change_request_draft(
        kind=ChangeKind.FIELD_POLICIES,
        target=f"schema:{revision.schema.name}",
        payload={str(revision.version): {w.path: asdict(w.annotated) for w in seed.withheld}},
        reason=(
            f"Registering {revision} annotated {paths} with a weaker policy than the "
            "reviewed one; the reviewed policy stays in force until this is approved."
        ),
        actor=actor,
    )


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


@transaction.atomic
def default_configuration_load(*, actor: AbstractBaseUser | None = None) -> list[str]:
    """Load the default governance configuration; idempotent. Return what changed, a line each."""
    changes = []
    PolicyEpoch.objects.get_or_create(pk=1)
    for default in DEFAULT_EVENT_CLASSES:
        _, created = event_class_ensure(
            name=default.name,
            retention_days=default.retention_days,
            description=default.description,
        )
        if created:
            changes.append(f"event class {default.name}: retention {default.retention_days} days")
    sources = platform_proto_sources()
    for platform_schema in PLATFORM_SCHEMAS:
        registered = schema_register(
            name=platform_schema.name,
            event_class=platform_schema.event_class,
            proto_files=sources,
            message_name=platform_schema.message_name,
            description=platform_schema.description,
            actor=actor,
        )
        if registered.created:
            changes.append(f"schema {platform_schema.name} v{registered.revision.version}")
            changes.extend(
                f"  not applied (weaker than the reviewed policy, propose it for review): "
                f"{w.path} {_describe(w.annotated)}, in force {_describe(w.in_force)}"
                for w in registered.withheld
            )
        elif not registered.revision.field_policies.exists():
            # Registered before field policies existed: seed them from the annotations.
            revision = registered.revision
            seeded = field_policies_seed(
                load_schema(bytes(revision.descriptor_set), revision.message_name),
                roles=revision.roles,
                previous={},
            ).policies
            FieldPolicy.objects.bulk_create(
                FieldPolicy(revision=revision, path=path, **asdict(spec))
                for path, spec in seeded.items()
            )
            policy_epoch_bump()
            changes.append(f"field policies of {revision} seeded ({len(seeded)})")
    from django.contrib.auth.models import Group, Permission

    from telemetry_platform.beat import beat_schedule_seed

    from ..roles import roles_sync

    changes.extend(beat_schedule_seed())
    changes.extend(roles_sync(group_model=Group, permission_model=Permission))
    return changes


# -- field policies -------------------------------------------------------------------


class PolicyApplyError(Exception):
    """A policy change was refused; ``errors`` names every problem. Nothing changed."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def _describe(spec: PolicySpec | None) -> str:
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
        changes.append(f"{revision} {path}: {_describe(current.get(path))} -> {_describe(spec)}")
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
