"""The plan of a schema as the registry holds it now (reads only)."""

from __future__ import annotations

from ..models import MetricDefinition, OtlpLogRoute, RetentionOverride, Schema
from ..selectors import field_policy_specs
from ..services.change_kinds import breaking_rules_state
from .document import METRIC_DEFAULTS, ROUTE_DEFAULTS, MetricPlan, RevisionPlan, TelemetryPlan


def schema_plan_get(*, schema: Schema) -> TelemetryPlan:
    """The schema's breaking rules, retention override, revisions with policies, metrics
    and the OTLP log routes that send records to it."""
    override = RetentionOverride.objects.filter(schema=schema).first()
    return TelemetryPlan(
        schema=schema.name,
        breaking=breaking_rules_state(f"breaking_rules:{schema.name}"),
        retention_override=None
        if override is None
        else {"retention_days": override.retention_days, "reason": override.reason},
        revisions={
            revision.version: RevisionPlan(
                status=revision.status, fields=field_policy_specs(revision)
            )
            for revision in schema.revisions.order_by("version")
        },
        metrics={
            definition.name: MetricPlan(
                name=definition.name,
                settings={key: getattr(definition, key) for key in METRIC_DEFAULTS},
            )
            for definition in MetricDefinition.objects.filter(schema=schema).order_by("name")
        },
        otlp_log_routes={
            route.name: {key: getattr(route, key) for key in ROUTE_DEFAULTS}
            for route in OtlpLogRoute.objects.filter(schema_name=schema.name).order_by("name")
        },
    )
