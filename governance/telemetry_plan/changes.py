"""A plan against the registry: what would change, checked whole; applying it, reviewed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from ..choices import ChangeKind, RevisionStatus
from ..metric_plans import MetricDefinitionError, metric_compile
from ..models import ChangeRequest, MetricDefinition, OtlpLogRoute, Schema, SchemaRevision
from ..schemas import leaf_fields, load_schema
from ..selectors import field_policy_specs
from ..services import (
    ChangeRequestError,
    DiffRow,
    change_diff,
    change_request_approve,
    change_request_draft,
    kind_spec,
)
from .document import TelemetryPlan

# Applied in this order: a metric's labels need the policies (and the lifecycle) in force.
KIND_ORDER = (
    ChangeKind.BREAKING_RULES,
    ChangeKind.FIELD_POLICIES,
    ChangeKind.SCHEMA_STATUS,
    ChangeKind.RETENTION_OVERRIDE,
    ChangeKind.METRIC_DEFINITION,
    ChangeKind.OTLP_LOG_ROUTE,
)


class PlanRefused(Exception):
    """The plans cannot apply as a whole; ``errors`` names every problem. Nothing changed."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class PlanChange:
    """One reviewed change the plan needs: its kind, target, payload, and rows live -> plan."""

    kind: str
    target: str
    payload: Any
    rows: tuple[DiffRow, ...]


@dataclass(frozen=True)
class SchemaDrift:
    """Where one schema's registry state differs from its plan."""

    schema: str
    changes: tuple[PlanChange, ...]


def _field_payload(
    schema: Schema, plan: TelemetryPlan, revisions: dict[int, SchemaRevision], errors: list[str]
) -> dict[str, dict[str, Any]]:
    payload: dict[str, dict[str, Any]] = {}
    for version, revision in sorted(revisions.items()):
        planned = plan.revisions[version]
        if RevisionStatus.RETIRED in (revision.status, planned.status):
            continue  # a retired revision ingests nothing: its policies are history
        compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
        known = [path for path, _ in leaf_fields(compiled.descriptor)]
        unknown = sorted(set(planned.fields) - set(known))
        errors.extend(f"{schema.name} v{version} has no field {path!r}" for path in unknown)
        current = field_policy_specs(revision)
        changed = {
            path: None if planned.fields.get(path) is None else asdict(planned.fields[path])
            for path in known
            if planned.fields.get(path) != current.get(path)
        }
        if changed:
            payload[str(version)] = changed
    return payload


def _metrics_check(
    plan: TelemetryPlan, revisions: dict[int, SchemaRevision], errors: list[str]
) -> None:
    """Compile each planned metric against the newest revision the plan keeps live, under
    the plan's own policies (the registry's may be the ones the plan changes)."""
    live = [v for v in sorted(revisions) if plan.revisions[v].status != RevisionStatus.RETIRED]
    if plan.metrics and not live:
        errors.append(f"{plan.schema}: metrics need a live revision")
        return
    if not live:
        return
    revision = revisions[live[-1]]
    descriptor = load_schema(bytes(revision.descriptor_set), revision.message_name).descriptor
    classifications = {p: s.classification for p, s in plan.revisions[live[-1]].fields.items()}
    for name, metric in sorted(plan.metrics.items()):
        try:
            metric_compile({"name": name, **metric.settings}, descriptor, classifications)
        except MetricDefinitionError as exc:
            errors.extend(f"{plan.schema}: metric {name}: {problem}" for problem in exc.errors)
        except (TypeError, ValueError, AttributeError):
            errors.append(f"{plan.schema}: metric {name}: malformed labels or buckets")
        owner = MetricDefinition.objects.filter(name=name).exclude(schema__name=plan.schema)
        if owner.exists():
            errors.append(f"{plan.schema}: metric {name} belongs to another schema's plan")


def _proposals(schema: Schema, plan: TelemetryPlan, errors: list[str]) -> list[tuple]:
    revisions = {revision.version: revision for revision in schema.revisions.all()}
    missing = sorted(set(revisions) - set(plan.revisions))
    errors.extend(f"{schema.name} v{v} is registered but not in the plan" for v in missing)
    unregistered = sorted(set(plan.revisions) - set(revisions))
    errors.extend(f"{schema.name} has no revision {v} (register it first)" for v in unregistered)
    if missing or unregistered:
        return []
    proposals: list[tuple] = [
        (ChangeKind.BREAKING_RULES, f"breaking_rules:{schema.name}", plan.breaking)
    ]
    fields = _field_payload(schema, plan, revisions, errors)
    if fields:
        proposals.append((ChangeKind.FIELD_POLICIES, f"schema:{schema.name}", fields))
    for version, revision in sorted(revisions.items()):
        status = plan.revisions[version].status
        if status != revision.status:
            target = f"schema_revision:{schema.name}@{version}"
            proposals.append((ChangeKind.SCHEMA_STATUS, target, {"status": status}))
    proposals.append(
        (
            ChangeKind.RETENTION_OVERRIDE,
            f"retention_override:{schema.name}",
            plan.retention_override,
        )
    )
    _metrics_check(plan, revisions, errors)
    for name, metric in sorted(plan.metrics.items()):
        payload = {"schema": schema.name, **metric.settings}
        proposals.append((ChangeKind.METRIC_DEFINITION, f"metric:{name}", payload))
    for name in MetricDefinition.objects.filter(schema=schema).values_list("name", flat=True):
        if name not in plan.metrics:
            proposals.append((ChangeKind.METRIC_DEFINITION, f"metric:{name}", None))
    proposals.extend(_route_proposals(schema, plan, errors))
    return proposals


def _route_proposals(schema: Schema, plan: TelemetryPlan, errors: list[str]) -> list[tuple]:
    """The routes sending records to the schema: as planned, and the others removed. A
    route of another schema (or a rejecting one) is that plan's, or the admin's, to move."""
    proposals: list[tuple] = []
    current = dict(OtlpLogRoute.objects.values_list("name", "schema_name"))
    for name, settings in sorted(plan.otlp_log_routes.items()):
        if current.get(name, schema.name) != schema.name:
            errors.append(f"{schema.name}: OTLP log route {name} sends records elsewhere")
            continue
        payload = {"schema_name": schema.name, **settings}
        proposals.append((ChangeKind.OTLP_LOG_ROUTE, f"otlp_log_route:{name}", payload))
    for name, target_schema in sorted(current.items()):
        if target_schema == schema.name and name not in plan.otlp_log_routes:
            proposals.append((ChangeKind.OTLP_LOG_ROUTE, f"otlp_log_route:{name}", None))
    return proposals


def telemetry_plan_changes(plans: Mapping[str, TelemetryPlan]) -> list[SchemaDrift]:
    """What applying the plans would change, schema by schema (schemas in no plan are not
    looked at). Every plan is checked first: PlanRefused lists every problem of every one.
    """
    errors: list[str] = []
    drifts = []
    for name, plan in sorted(plans.items()):
        schema = Schema.objects.filter(name=name).first()
        if schema is None:
            errors.append(f"{name}: no schema registered under this name (register it first)")
            continue
        changes = []
        for kind, target, payload in _proposals(schema, plan, errors):
            spec = kind_spec(kind)
            try:
                normalised = spec.validate(target, payload)
            except ChangeRequestError as exc:
                errors.append(f"{name}: {exc.message}")
                continue
            base = spec.relevant(spec.state(target), normalised)
            if base != normalised:
                rows = tuple(change_diff(kind, base, normalised))
                changes.append(PlanChange(kind, target, normalised, rows))
        if changes:
            changes.sort(key=lambda change: KIND_ORDER.index(change.kind))
            drifts.append(SchemaDrift(name, tuple(changes)))
    if errors:
        raise PlanRefused(errors)
    return drifts


@transaction.atomic
def telemetry_plan_apply(
    *,
    plans: Mapping[str, TelemetryPlan],
    author: AbstractBaseUser,
    approver: AbstractBaseUser | None = None,
    reason: str = "",
) -> list[ChangeRequest]:
    """Propose one submitted change request per target that differs from its plan.

    With ``approver`` (a second person) each is also approved and applied, in
    ``KIND_ORDER``. One transaction: a plan refused (PlanRefused) or a step refused
    (ChangeRequestError) leaves nothing proposed and nothing applied.
    """
    if approver is not None and approver.pk == author.pk:
        raise ChangeRequestError(
            "own_change", "the approver must be a second person, not the author"
        )
    requests = []
    for drift in telemetry_plan_changes(plans):
        for change in drift.changes:
            change_request = change_request_draft(
                kind=change.kind,
                target=change.target,
                payload=change.payload,
                reason=reason or f"Telemetry plan of {drift.schema}",
                actor=author,
            )
            if approver is not None:
                change_request = change_request_approve(
                    change_request=change_request, actor=approver, apply=True
                )
            requests.append(change_request)
    return requests
