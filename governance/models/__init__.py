"""Governance records: the registry and its policies, and the reviewed changes to them."""

from .otlp import OtlpLogRoute
from .registry import (
    EventClass,
    FieldPolicy,
    LegalHold,
    MetricDefinition,
    PolicyEpoch,
    RetentionOverride,
    ScannerRule,
    Schema,
    SchemaRevision,
    identifier_validator,
    metric_name_validator,
    schema_name_validator,
)
from .review import ChangeRequest, PolicyReview, PolicyVersion

__all__ = [
    "ChangeRequest",
    "EventClass",
    "FieldPolicy",
    "LegalHold",
    "MetricDefinition",
    "OtlpLogRoute",
    "PolicyEpoch",
    "PolicyReview",
    "PolicyVersion",
    "RetentionOverride",
    "ScannerRule",
    "Schema",
    "SchemaRevision",
    "identifier_validator",
    "metric_name_validator",
    "schema_name_validator",
]
