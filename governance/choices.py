"""Choices used across governance: lifecycle, field roles, policies and their strength."""

from django.db import models


class RevisionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"
    RETIRED = "retired", "Retired"


INGESTIBLE_STATUSES = frozenset({RevisionStatus.ACTIVE, RevisionStatus.DEPRECATED})


class FieldRole(models.TextChoices):
    """Which envelope fact a schema field carries (mirrors ``telemetry.v1.FieldRole``)."""

    EVENT_ID = "event_id", "Event id"
    OCCURRED_AT = "occurred_at", "Occurred at"
    SOURCE = "source", "Source"
    SURFACE = "surface", "Surface"
    CLIENT_BUILD_ID = "client_build_id", "Client build id"
    APP_VERSION = "app_version", "App version"
    PROTOCOL_VERSION = "protocol_version", "Protocol version"
    REQUEST_ID = "request_id", "Request id"
    TRACEPARENT = "traceparent", "W3C traceparent"
    TRACESTATE = "tracestate", "W3C tracestate"
    SESSION_ID = "session_id", "Session id"
    DEVICE_ID = "device_id", "Device id"
    ACTOR = "actor", "Actor"
    TOPIC = "topic", "Topic"
    RUN_ID = "run_id", "Run id"
    WORKER_ID = "worker_id", "Worker id"


class Classification(models.TextChoices):
    """How sensitive a field's values are (mirrors ``telemetry.v1.Classification``)."""

    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    PSEUDONYMOUS_ID = "pseudonymous_id", "Pseudonymous id"
    PERSONAL = "personal", "Personal"
    SENSITIVE = "sensitive", "Sensitive"
    SECRET = "secret", "Secret"


class RedactionAction(models.TextChoices):
    """What ingest does to a field's value (mirrors ``telemetry.v1.RedactionAction``)."""

    KEEP = "keep", "Keep"
    HASH = "hash", "Hash (keyed HMAC-SHA256)"
    MASK = "mask", "Mask (keep last N characters)"
    TRUNCATE = "truncate", "Truncate (keep first N characters)"
    GENERALIZE = "generalize", "Generalize (IPv4 /24, IPv6 /48, time to the hour)"
    DROP = "drop", "Drop"
    REJECT_EVENT = "reject_event", "Reject the event"


# How much each classification and action protects, weakest first. A policy moves to a
# weaker one only through a reviewed change request; a stronger one may apply at once.
CLASSIFICATION_STRENGTH: dict[str, int] = {
    Classification.PUBLIC: 0,
    Classification.INTERNAL: 1,
    Classification.PSEUDONYMOUS_ID: 2,
    Classification.PERSONAL: 3,
    Classification.SENSITIVE: 4,
    Classification.SECRET: 5,
}
# Truncate and mask both keep N characters (mask the less identifying end); a keyed hash
# keeps no character, only joins; drop keeps nothing; reject_event refuses the event.
ACTION_STRENGTH: dict[str, int] = {
    RedactionAction.KEEP: 0,
    RedactionAction.GENERALIZE: 1,
    RedactionAction.TRUNCATE: 2,
    RedactionAction.MASK: 3,
    RedactionAction.HASH: 4,
    RedactionAction.DROP: 5,
    RedactionAction.REJECT_EVENT: 6,
}


class ScanAction(models.TextChoices):
    REPLACE = "replace", "Replace with a token"
    HASH = "hash", "Hash"
    MASK = "mask", "Mask"


class ChangeKind(models.TextChoices):
    """What a change request changes; each kind names its target differently."""

    FIELD_POLICIES = "field_policies", "Field policies"
    SCANNER_RULE = "scanner_rule", "Content scanner rule"
    CLASS_RETENTION = "class_retention", "Event class retention"
    RETENTION_OVERRIDE = "retention_override", "Schema retention override"
    LEGAL_HOLD_PLACE = "legal_hold_place", "Place a legal hold"
    LEGAL_HOLD_RELEASE = "legal_hold_release", "Release a legal hold"
    SCHEMA_STATUS = "schema_status", "Schema lifecycle"
    BREAKING_RULES = "breaking_rules", "Schema breaking-change rules"
    METRIC_DEFINITION = "metric_definition", "Metric definition"
    OTLP_LOG_ROUTE = "otlp_log_route", "OTLP log route"


class ChangeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    APPLIED = "applied", "Applied"
    WITHDRAWN = "withdrawn", "Withdrawn"


# A change request in one of these may still apply (or be withdrawn, or rebased).
OPEN_CHANGE_STATUSES = (ChangeStatus.DRAFT, ChangeStatus.SUBMITTED, ChangeStatus.APPROVED)
