"""The plan file format: parse and render one schema's plan (pure, no database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ..choices import RevisionStatus
from ..compatibility import CATEGORIES, DEFAULT_CATEGORY
from ..policies import PolicyDocumentError, policy_entry_dump, policy_entry_parse
from ..redaction import PolicySpec

PLAN_KEYS = {"schema", "breaking", "retention_override", "revisions", "metrics", "otlp_log_routes"}
BREAKING_DEFAULTS: dict[str, Any] = {
    "category": DEFAULT_CATEGORY,
    "ignore": [],
    "ignore_only": {},
    "ignore_unstable_packages": False,
}
RETENTION_KEYS = {"retention_days", "reason"}
REVISION_KEYS = {"status", "fields"}
METRIC_DEFAULTS: dict[str, Any] = {
    "kind": "counter",
    "help": "",
    "labels": [],
    "value_field": "",
    "only_when": "",
    "buckets": [],
    "max_series": 1000,
    "enabled": True,
}
# An OTLP log route sending records to the plan's schema (its schema_name is the plan's).
ROUTE_DEFAULTS: dict[str, Any] = {
    "priority": 100,
    "match_event_name": "",
    "match_scope": "",
    "match_service": "",
    "description": "",
}


class PlanDocumentError(PolicyDocumentError):
    """The YAML is not a valid plan; ``errors`` lists every problem."""


@dataclass(frozen=True)
class RevisionPlan:
    """One revision: its lifecycle state and its field policies (path -> policy)."""

    status: str
    fields: dict[str, PolicySpec] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricPlan:
    """One catalogue metric computed from the schema's events (MetricDefinition's fields)."""

    name: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class TelemetryPlan:
    """Everything reviewed about one schema, as one document."""

    schema: str
    breaking: dict[str, Any]
    retention_override: dict[str, Any] | None
    revisions: dict[int, RevisionPlan]
    metrics: dict[str, MetricPlan]
    otlp_log_routes: dict[str, dict[str, Any]] = field(default_factory=dict)


def plan_yaml_dump(plan: TelemetryPlan) -> str:
    """Render a plan in its stable format (defaults of metrics left out, paths sorted)."""
    document: dict[str, Any] = {
        "schema": plan.schema,
        "breaking": plan.breaking,
        "retention_override": plan.retention_override,
        "revisions": {
            version: {
                "status": revision.status,
                "fields": {
                    path: policy_entry_dump(revision.fields[path])
                    for path in sorted(revision.fields)
                },
            }
            for version, revision in sorted(plan.revisions.items())
        },
        "metrics": {
            name: {
                key: value
                for key, value in plan.metrics[name].settings.items()
                if METRIC_DEFAULTS.get(key) != value
            }
            for name in sorted(plan.metrics)
        },
    }
    if plan.otlp_log_routes:  # left out when no route names the schema
        document["otlp_log_routes"] = {
            name: {
                key: value
                for key, value in plan.otlp_log_routes[name].items()
                if ROUTE_DEFAULTS.get(key) != value
            }
            for name in sorted(plan.otlp_log_routes)
        }
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _breaking(raw: Any, errors: list[str]) -> dict[str, Any]:
    if raw is None:
        return dict(BREAKING_DEFAULTS)
    if not isinstance(raw, dict):
        errors.append("breaking: expected {category: ..., ignore: [...], ...}")
        return dict(BREAKING_DEFAULTS)
    errors.extend(f"breaking: unknown key {key!r}" for key in raw if key not in BREAKING_DEFAULTS)
    breaking = BREAKING_DEFAULTS | {key: raw[key] for key in raw if key in BREAKING_DEFAULTS}
    if breaking["category"] not in CATEGORIES:
        errors.append(f"breaking.category: one of {', '.join(CATEGORIES)}")
    if not isinstance(breaking["ignore"], list):
        errors.append("breaking.ignore: a list of proto files or directories")
    if not isinstance(breaking["ignore_only"], dict):
        errors.append("breaking.ignore_only: a mapping of rule id -> list of paths")
    if not isinstance(breaking["ignore_unstable_packages"], bool):
        errors.append("breaking.ignore_unstable_packages: true or false")
    return breaking


def _retention(raw: Any, errors: list[str]) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors.append("retention_override: expected {retention_days: N, reason: ...} or null")
        return None
    errors.extend(
        f"retention_override: unknown key {key!r}" for key in raw if key not in RETENTION_KEYS
    )
    if not _is_int(raw.get("retention_days")):
        errors.append("retention_override.retention_days: a whole number of days")
    if not isinstance(raw.get("reason"), str) or not raw["reason"].strip():
        errors.append("retention_override.reason: say why this schema is kept differently")
    return {"retention_days": raw.get("retention_days"), "reason": str(raw.get("reason", ""))}


def _revisions(raw: Any, errors: list[str]) -> dict[int, RevisionPlan]:
    if not isinstance(raw, dict) or not raw:
        errors.append("revisions: map each revision number to {status: ..., fields: {...}}")
        return {}
    revisions = {}
    for version, entry in raw.items():
        where = f"revisions.{version}"
        if not _is_int(version) or version < 1:
            errors.append(f"{where}: a revision number (1, 2, ...)")
            continue
        if not isinstance(entry, dict):
            errors.append(f"{where}: expected {{status: ..., fields: {{...}}}}")
            continue
        errors.extend(f"{where}: unknown key {key!r}" for key in entry if key not in REVISION_KEYS)
        status = entry.get("status")
        if status not in RevisionStatus.values:
            errors.append(f"{where}.status: one of {', '.join(RevisionStatus.values)}")
        raw_fields = entry.get("fields") or {}
        if not isinstance(raw_fields, dict):
            errors.append(f"{where}.fields: map field paths to policies")
            raw_fields = {}
        field_errors: list[str] = []
        fields = {}
        for path, spec_entry in raw_fields.items():
            spec = policy_entry_parse(str(path), spec_entry, field_errors)
            if spec is not None:
                fields[str(path)] = spec
        errors.extend(f"{where}.fields: {problem}" for problem in field_errors)
        revisions[version] = RevisionPlan(status=str(status), fields=fields)
    return revisions


def _metrics(raw: Any, errors: list[str]) -> dict[str, MetricPlan]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append("metrics: map metric names to their definitions")
        return {}
    metrics = {}
    for name, entry in raw.items():
        entry = {} if entry is None else entry
        if not isinstance(name, str) or not isinstance(entry, dict):
            errors.append(f"metrics.{name}: expected {{kind: counter, labels: [...], ...}}")
            continue
        errors.extend(
            f"metrics.{name}: unknown key {key!r}" for key in entry if key not in METRIC_DEFAULTS
        )
        settings = METRIC_DEFAULTS | {k: v for k, v in entry.items() if k in METRIC_DEFAULTS}
        metrics[name] = MetricPlan(name=name, settings=settings)
    return metrics


def _routes(raw: Any, errors: list[str]) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.append("otlp_log_routes: map route names to {priority: N, match_scope: ...}")
        return {}
    routes = {}
    for name, entry in raw.items():
        entry = {} if entry is None else entry
        where = f"otlp_log_routes.{name}"
        if not isinstance(name, str) or not isinstance(entry, dict):
            errors.append(f"{where}: expected {{priority: N, match_event_name: ..., ...}}")
            continue
        errors.extend(f"{where}: unknown key {key!r}" for key in entry if key not in ROUTE_DEFAULTS)
        routes[name] = ROUTE_DEFAULTS | {k: v for k, v in entry.items() if k in ROUTE_DEFAULTS}
    return routes


def plan_yaml_parse(text: str) -> TelemetryPlan:
    """Parse and check the shape of a plan; every problem is listed, with its key path.

    What needs the registry (field paths, retention limits, lifecycle moves, metric
    label guard rails) is checked when the plan is compared with it.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PlanDocumentError([f"not valid YAML{where}"]) from None
    if not isinstance(document, dict):
        raise PlanDocumentError(["the plan must be a mapping with 'schema' and 'revisions'"])
    errors = [f"unknown key {key!r}" for key in document if key not in PLAN_KEYS]
    schema = document.get("schema")
    if not isinstance(schema, str) or not schema:
        errors.append("schema: must name a schema")
    plan = TelemetryPlan(
        schema=str(schema),
        breaking=_breaking(document.get("breaking"), errors),
        retention_override=_retention(document.get("retention_override"), errors),
        revisions=_revisions(document.get("revisions"), errors),
        metrics=_metrics(document.get("metrics"), errors),
        otlp_log_routes=_routes(document.get("otlp_log_routes"), errors),
    )
    if errors:
        raise PlanDocumentError(errors)
    return plan
