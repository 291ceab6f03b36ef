"""The default governance configuration that `manage.py bootstrap` loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .protoc import PLATFORM_PROTO_ROOT
from .scanners import BUILTIN_RULES, ScannerRule


@dataclass(frozen=True)
class EventClassDefault:
    name: str
    retention_days: int
    description: str


@dataclass(frozen=True)
class PlatformSchema:
    name: str
    event_class: str
    message_name: str
    description: str
    # None: the platform's event files (PLATFORM_PROTO_FILES).
    proto_files: tuple[str, ...] | None = None


DEFAULT_EVENT_CLASSES = (
    EventClassDefault("audit_event", 400, "Security-relevant actions, searchable by analysts."),
    EventClassDefault("service_metric", 90, "Counter, gauge and histogram samples of services."),
    EventClassDefault("client_diagnostic", 30, "Diagnostics from web, desktop and mobile clients."),
    EventClassDefault(
        "performance_budget_sample", 365, "Measured values from release performance sign-offs."
    ),
    EventClassDefault("service_log", 30, "Service log records received over OTLP."),
)

PLATFORM_SCHEMAS = (
    PlatformSchema(
        "telemetry.audit_event.v1",
        "audit_event",
        "telemetry.v1.AuditEvent",
        "Audit events in the control service's shape; also the platform's own audit log.",
    ),
    PlatformSchema(
        "telemetry.service_metric.v1",
        "service_metric",
        "telemetry.v1.ServiceMetric",
        "Service counter, gauge and histogram samples.",
    ),
    PlatformSchema(
        "telemetry.client_diagnostic.v1",
        "client_diagnostic",
        "telemetry.v1.ClientDiagnostic",
        "Generic client diagnostics.",
    ),
    PlatformSchema(
        "telemetry.performance_budget_sample.v1",
        "performance_budget_sample",
        "telemetry.v1.PerformanceBudgetSample",
        "One measured value of a release performance sign-off.",
    ),
    PlatformSchema(
        "posthog.capture.v1",
        "client_diagnostic",
        "telemetry.v1.PostHogCaptureEvent",
        "Events posthog-js sends to the PostHog capture endpoints (ids hashed, $ip dropped).",
        ("telemetry/v1/posthog.proto", "telemetry/v1/options.proto"),
    ),
    PlatformSchema(
        "telemetry.otel_log.v1",
        "service_log",
        "telemetry.v1.OtelLog",
        "OTLP log records no mapping route sends elsewhere (semantic-convention personal "
        "attributes hashed or dropped, the rest scanned).",
        ("telemetry/v1/otel.proto", "telemetry/v1/options.proto"),
    ),
)
POSTHOG_CAPTURE_SCHEMA = "posthog.capture.v1"
OTEL_LOG_SCHEMA = "telemetry.otel_log.v1"

PLATFORM_AUDIT_SCHEMA = "telemetry.audit_event.v1"
PLATFORM_SOURCE = "platform"
PLATFORM_PROTO_FILES = ("telemetry/v1/events.proto", "telemetry/v1/options.proto")


def platform_proto_sources() -> dict[str, str]:
    """Return the platform's event .proto files, by their import path."""
    return proto_sources(PLATFORM_PROTO_FILES)


def proto_sources(files: tuple[str, ...]) -> dict[str, str]:
    """Return the platform's .proto ``files``, by their import path."""
    return {name: (Path(PLATFORM_PROTO_ROOT) / name).read_text() for name in files}


def default_scanner_rules() -> tuple:
    """The content scanners every plan runs: the built-ins, plus UUIDs pseudonymised.

    Device and installation ids are UUIDs; in free text or attributes they are replaced
    by their keyed hash, which keeps them joinable without keeping them.
    """
    uuid_rule = ScannerRule(
        name="uuid",
        pattern=r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        action="hash",
        prefilter="-",
        min_digits=4,
    )
    return (*BUILTIN_RULES, uuid_rule)
