"""The whole telemetry plan of a schema as code: one YAML file per schema, diffed and applied."""

from .changes import (
    PlanChange,
    PlanRefused,
    SchemaDrift,
    telemetry_plan_apply,
    telemetry_plan_changes,
)
from .document import (
    MetricPlan,
    PlanDocumentError,
    RevisionPlan,
    TelemetryPlan,
    plan_yaml_dump,
    plan_yaml_parse,
)
from .files import plan_directory_read, plan_directory_write
from .state import schema_plan_get

__all__ = [
    "MetricPlan",
    "PlanChange",
    "PlanDocumentError",
    "PlanRefused",
    "RevisionPlan",
    "SchemaDrift",
    "TelemetryPlan",
    "plan_directory_read",
    "plan_directory_write",
    "plan_yaml_dump",
    "plan_yaml_parse",
    "schema_plan_get",
    "telemetry_plan_apply",
    "telemetry_plan_changes",
]
