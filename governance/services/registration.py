"""Schema registration and the default configuration load.

Registering a revision may propose a change request (an annotation weaker than the
reviewed policy is not applied, it is proposed), so this module sits above both the
configuration writes (``configuration.py``) and the workflow (``change_requests.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass

from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from telemetry_platform.beat import beat_schedule_seed

from ..choices import ChangeKind, RevisionStatus
from ..compatibility import Violation, check_against_history
from ..defaults import (
    DEFAULT_EVENT_CLASSES,
    PLATFORM_SCHEMAS,
    platform_proto_sources,
    proto_sources,
)
from ..metrics import SCHEMA_REGISTRATIONS
from ..models import (
    ChangeRequest,
    EventClass,
    FieldPolicy,
    PolicyEpoch,
    Schema,
    SchemaRevision,
)
from ..policies import (
    PolicySeed,
    WithheldAnnotation,
    annotated_policies,
    field_policies_seed,
)
from ..ports import audit_event_record
from ..protoc import ProtoCompileError, compile_protos_serialized
from ..roles import roles_sync
from ..schemas import SchemaDefinitionError, derive_roles, load_schema
from ..selectors import field_policy_specs
from .change_requests import change_request_draft
from .configuration import event_class_ensure, policy_describe, policy_epoch_bump
from .otlp_routes import otlp_log_routes_seed


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
            proto_files=(
                sources
                if platform_schema.proto_files is None
                else proto_sources(platform_schema.proto_files)
            ),
            message_name=platform_schema.message_name,
            description=platform_schema.description,
            actor=actor,
        )
        if registered.created:
            changes.append(f"schema {platform_schema.name} v{registered.revision.version}")
            changes.extend(
                f"  not applied (weaker than the reviewed policy, propose it for review): "
                f"{w.path} {policy_describe(w.annotated)}, in force {policy_describe(w.in_force)}"
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
    changes.extend(otlp_log_routes_seed(actor=actor))
    changes.extend(beat_schedule_seed())
    changes.extend(roles_sync(group_model=Group, permission_model=Permission))
    return changes
