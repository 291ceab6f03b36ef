"""What each kind of change request targets, how it is validated, diffed and applied."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import slug_re
from django.db import transaction
from django.utils.dateparse import parse_datetime

from ..choices import ChangeKind, Classification, RedactionAction, RevisionStatus, ScanAction
from ..compatibility import CATEGORIES, DEFAULT_CATEGORY, RuleSet
from ..metric_plans import MetricDefinitionError, metric_compile
from ..models import (
    EventClass,
    FieldPolicy,
    LegalHold,
    MetricDefinition,
    OtlpLogRoute,
    RetentionOverride,
    ScannerRule,
    Schema,
    SchemaRevision,
    identifier_validator,
    metric_name_validator,
)
from ..redaction import PolicySpec
from ..scanners import validate_custom_pattern
from ..schemas import leaf_fields, load_schema
from ..selectors import field_policy_specs, revision_leaf_paths
from .configuration import (
    ALLOWED_TRANSITIONS,
    event_class_retention_update,
    field_policies_set,
    legal_hold_create,
    legal_hold_release,
    metric_definition_delete,
    metric_definition_save,
    policy_epoch_bump,
    retention_limits_for,
    retention_override_set,
    scanner_rule_save,
    schema_breaking_rules_set,
    schema_revision_status_change,
)
from .otlp_routes import ROUTE_DEFAULTS, otlp_log_route_delete, otlp_log_route_save

NEW_HOLD_TARGET = "legal_hold:new"
MAX_KEEP_CHARS = 64


class ChangeRequestError(Exception):
    """A workflow step was refused; ``code`` names why. Nothing changed."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def invalid(message: str) -> ChangeRequestError:
    return ChangeRequestError("invalid_change", message)


@dataclass(frozen=True)
class DiffRow:
    """One changed item: what it is, its value now and its proposed value."""

    item: str
    old: str
    new: str


@dataclass(frozen=True)
class ChangeKindSpec:
    """The behaviour of one kind of change.

    ``state`` reads the target's current state (JSON-able; None when it does not
    exist). ``validate`` returns the normalised payload or raises. ``relevant`` cuts
    the part of a state a payload is about: a request is stale when that part moved.
    """

    kind: str
    state: Callable[[str], Any]
    validate: Callable[[str, Any], Any]
    apply: Callable[[str, Any, AbstractBaseUser, AbstractBaseUser], str]
    summary: Callable[[str, Any], str]
    relevant: Callable[[Any, Any], Any] = lambda state, payload: state
    diff: Callable[[Any, Any], list[DiffRow]] | None = None
    restorable: bool = True


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    return str(value)


def dict_diff(old: Any, new: Any) -> list[DiffRow]:
    """Key by key differences of two flat dicts (None: the thing does not exist)."""
    old, new = old or {}, new or {}
    return [
        DiffRow(key, _text(old.get(key)), _text(new.get(key)))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _target_name(target: str, prefix: str) -> str:
    head, _, name = target.partition(":")
    if head != prefix or not name:
        raise invalid(f"target {target!r} is not a {prefix} target")
    return name


# -- field policies: target "schema:NAME", payload {"VERSION": {path: spec | None}} ---------


def _live_revisions(schema: Schema) -> list[SchemaRevision]:
    return list(schema.revisions.exclude(status=RevisionStatus.RETIRED).order_by("version"))


def _field_schema(target: str) -> Schema:
    name = _target_name(target, "schema")
    schema = Schema.objects.filter(name=name).first()
    if schema is None:
        raise invalid(f"no schema named {name!r}")
    return schema


def _spec_dict(spec: PolicySpec) -> dict[str, Any]:
    return asdict(spec)


def field_policies_state(target: str) -> dict[str, dict[str, Any]]:
    schema = _field_schema(target)
    return {
        str(revision.version): {
            path: _spec_dict(spec) for path, spec in sorted(field_policy_specs(revision).items())
        }
        for revision in _live_revisions(schema)
    }


def _spec_from(path: str, raw: Any) -> PolicySpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid(f"{path}: expected an object with classification and action")
    classification, action = raw.get("classification"), raw.get("action")
    if classification not in Classification.values:
        raise invalid(f"{path}: unknown classification {classification!r}")
    if action not in RedactionAction.values:
        raise invalid(f"{path}: unknown action {action!r}")
    keep_chars = raw.get("keep_chars")
    if keep_chars is not None and (
        not isinstance(keep_chars, int)
        or isinstance(keep_chars, bool)
        or not 0 <= keep_chars <= MAX_KEEP_CHARS
    ):
        raise invalid(f"{path}: keep_chars must be a whole number from 0 to {MAX_KEEP_CHARS}")
    return PolicySpec(classification, action, keep_chars, bool(raw.get("scan", False)))


def field_policies_validate(target: str, payload: Any) -> dict[str, dict[str, Any]]:
    schema = _field_schema(target)
    if not isinstance(payload, dict) or not payload:
        raise invalid("name at least one revision and field")
    live = {str(r.version): r for r in _live_revisions(schema)}
    normalised: dict[str, dict[str, Any]] = {}
    for version, fields in sorted(payload.items()):
        revision = live.get(str(version))
        if revision is None:
            raise invalid(f"{schema.name} has no live revision {version}")
        if not isinstance(fields, dict) or not fields:
            raise invalid(f"{schema.name} v{version}: name at least one field")
        known = set(revision_leaf_paths(revision))
        unknown = sorted(set(fields) - known)
        if unknown:
            raise invalid(f"{schema.name} v{version} has no field " + ", ".join(map(repr, unknown)))
        normalised[str(version)] = {}
        for path in sorted(fields):
            spec = _spec_from(path, fields[path])
            normalised[str(version)][path] = None if spec is None else _spec_dict(spec)
    return normalised


def field_policies_relevant(state: Any, payload: Any) -> dict[str, dict[str, Any]]:
    state = state or {}
    return {
        version: {path: (state.get(version) or {}).get(path) for path in fields}
        for version, fields in payload.items()
    }


def describe_spec(spec: dict[str, Any] | None) -> str:
    if spec is None:
        return "unclassified"
    text = f"{spec['classification']} / {spec['action']}"
    if spec.get("keep_chars") is not None:
        text += f" ({spec['keep_chars']})"
    return text + (" + scan" if spec.get("scan") else "")


def field_policies_diff(base: Any, payload: Any) -> list[DiffRow]:
    rows = []
    for version, fields in payload.items():
        old_fields = (base or {}).get(version) or {}
        for path, spec in fields.items():
            if old_fields.get(path) != spec:
                rows.append(
                    DiffRow(
                        f"v{version} {path}",
                        describe_spec(old_fields.get(path)),
                        describe_spec(spec),
                    )
                )
    return rows


def field_policies_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    schema = _field_schema(target)
    changes = []
    for version, fields in payload.items():
        revision = schema.revisions.get(version=int(version))
        specs = {p: PolicySpec(**s) for p, s in fields.items() if s is not None}
        changes.extend(field_policies_set(revision=revision, policies=specs, actor=actor))
        removed = [p for p, s in fields.items() if s is None]
        if removed and FieldPolicy.objects.filter(revision=revision, path__in=removed).delete()[0]:
            policy_epoch_bump()
            changes.extend(f"{revision} {path}: -> unclassified" for path in removed)
    return "; ".join(changes) or "no field changed"


def field_policies_summary(target: str, payload: Any) -> str:
    count = sum(len(fields) for fields in payload.values())
    return f"Field policies of {target.partition(':')[2]}: {count} field(s)"


# -- content scanner rules: target "scanner_rule:NAME" -------------------------------------

SCANNER_KEYS = ("pattern", "action", "replacement", "keep_chars", "enabled")


def scanner_rule_state(target: str) -> dict[str, Any] | None:
    rule = ScannerRule.objects.filter(name=_target_name(target, "scanner_rule")).first()
    return None if rule is None else {key: getattr(rule, key) for key in SCANNER_KEYS}


def scanner_rule_validate(target: str, payload: Any) -> dict[str, Any]:
    name = _target_name(target, "scanner_rule")
    try:
        identifier_validator(name)
    except ValidationError:
        raise invalid(
            f"rule name {name!r}: lower-case letters, digits and underscores, starting "
            "with a letter (at most 40)"
        ) from None
    if not isinstance(payload, dict):
        raise invalid("a scanner rule change is an object")
    pattern = payload.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise invalid("pattern: required")
    try:
        validate_custom_pattern(pattern)
    except ValueError as exc:
        raise invalid(f"pattern: {exc}") from None
    action = payload.get("action", ScanAction.REPLACE)
    if action not in ScanAction.values:
        raise invalid(f"action: unknown action {action!r}")
    replacement = payload.get("replacement") or ""
    if not isinstance(replacement, str) or len(replacement) > 64:
        raise invalid("replacement: at most 64 characters")
    keep_chars = payload.get("keep_chars", 4)
    if (
        not isinstance(keep_chars, int)
        or isinstance(keep_chars, bool)
        or not (0 <= keep_chars <= MAX_KEEP_CHARS)
    ):
        raise invalid(f"keep_chars: a whole number from 0 to {MAX_KEEP_CHARS}")
    return {
        "pattern": pattern,
        "action": action,
        "replacement": replacement,
        "keep_chars": keep_chars,
        "enabled": bool(payload.get("enabled", True)),
    }


def scanner_rule_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    name = _target_name(target, "scanner_rule")
    rule = ScannerRule.objects.filter(name=name).first() or ScannerRule(name=name)
    for key, value in payload.items():
        setattr(rule, key, value)
    scanner_rule_save(rule=rule, actor=actor)
    return f"scanner rule {name} saved"


# -- retention of an event class: target "event_class:NAME" --------------------------------


def _event_class(target: str) -> EventClass:
    name = _target_name(target, "event_class")
    event_class = EventClass.objects.filter(name=name).first()
    if event_class is None:
        raise invalid(f"no event class {name!r}")
    return event_class


def _days(event_class: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid("retention_days: a whole number of days")
    low, high = retention_limits_for(event_class)
    if not low <= value <= high:
        raise invalid(
            f"retention_days: {event_class} retention must be between {low} and {high} days "
            "(TELEMETRY_RETENTION_LIMITS)"
        )
    return value


def class_retention_state(target: str) -> dict[str, Any]:
    return {"retention_days": _event_class(target).retention_days}


def class_retention_validate(target: str, payload: Any) -> dict[str, Any]:
    event_class = _event_class(target)
    if not isinstance(payload, dict):
        raise invalid("a retention change is an object")
    return {"retention_days": _days(event_class.name, payload.get("retention_days"))}


def class_retention_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    event_class = _event_class(target)
    event_class_retention_update(
        event_class=event_class, retention_days=payload["retention_days"], actor=actor
    )
    return f"{event_class.name} retention {payload['retention_days']} days"


# -- per-schema retention override: target "retention_override:SCHEMA" -----------------------


def _override_schema(target: str) -> Schema:
    name = _target_name(target, "retention_override")
    schema = Schema.objects.filter(name=name).first()
    if schema is None:
        raise invalid(f"no schema named {name!r}")
    return schema


def retention_override_state(target: str) -> dict[str, Any] | None:
    override = RetentionOverride.objects.filter(schema=_override_schema(target)).first()
    if override is None:
        return None
    return {"retention_days": override.retention_days, "reason": override.reason}


def retention_override_validate(target: str, payload: Any) -> dict[str, Any] | None:
    schema = _override_schema(target)
    if payload is None or (isinstance(payload, dict) and payload.get("retention_days") is None):
        return None  # remove the override: the class retention applies again
    if not isinstance(payload, dict):
        raise invalid("a retention override is an object")
    reason = payload.get("reason") or ""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 300:
        raise invalid("reason: say why this schema is kept differently (at most 300 characters)")
    return {
        "retention_days": _days(schema.event_class_id, payload.get("retention_days")),
        "reason": reason.strip(),
    }


def retention_override_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    schema = _override_schema(target)
    retention_override_set(
        schema=schema,
        retention_days=None if payload is None else payload["retention_days"],
        reason="" if payload is None else payload["reason"],
        actor=actor,
    )
    return f"{schema.name} retention override {'removed' if payload is None else 'set'}"


# -- legal holds: "legal_hold:new" places one, "legal_hold:ID" releases it -------------------


def _when(payload: dict, key: str) -> datetime | None:
    value = payload.get(key)
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise invalid(f"{key}: an ISO 8601 date-time with a time zone")
    return parsed


def legal_hold_place_state(target: str) -> None:
    return None


def legal_hold_place_validate(target: str, payload: Any) -> dict[str, Any]:
    if target != NEW_HOLD_TARGET:
        raise invalid(f"a new hold's target is {NEW_HOLD_TARGET!r}")
    if not isinstance(payload, dict):
        raise invalid("a legal hold is an object")
    reason = payload.get("reason") or ""
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 300:
        raise invalid("reason: required, at most 300 characters")
    event_class, schema = payload.get("event_class") or "", payload.get("schema") or ""
    if event_class and not EventClass.objects.filter(name=event_class).exists():
        raise invalid(f"event_class: no event class {event_class!r}")
    if schema and not Schema.objects.filter(name=schema).exists():
        raise invalid(f"schema: no schema named {schema!r}")
    hashes = payload.get("actor_hashes") or []
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise invalid("actor_hashes: a list of keyed hashes")
    start, end = _when(payload, "occurred_from"), _when(payload, "occurred_to")
    expires = _when(payload, "expires_at")
    if not (event_class or schema or hashes or start or end):
        raise invalid("a hold needs at least one criterion")
    if start and end and start >= end:
        raise invalid("occurred_to: the hold's time range ends before it starts")
    return {
        "reason": reason.strip(),
        "event_class": event_class,
        "schema": schema,
        "actor_hashes": hashes,
        "occurred_from": start.isoformat() if start else None,
        "occurred_to": end.isoformat() if end else None,
        "expires_at": expires.isoformat() if expires else None,
    }


def legal_hold_place_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    hold = legal_hold_create(
        reason=payload["reason"],
        owner=author,
        event_class=EventClass.objects.filter(name=payload["event_class"]).first(),
        schema=Schema.objects.filter(name=payload["schema"]).first(),
        actor_hashes=payload["actor_hashes"],
        occurred_from=_when(payload, "occurred_from"),
        occurred_to=_when(payload, "occurred_to"),
        expires_at=_when(payload, "expires_at"),
        actor=actor,
    )
    return f"legal_hold:{hold.pk}"


def _hold(target: str) -> LegalHold:
    ident = _target_name(target, "legal_hold")
    hold = LegalHold.objects.filter(pk=int(ident)).first() if ident.isdigit() else None
    if hold is None:
        raise invalid(f"no legal hold {ident!r}")
    return hold


def legal_hold_release_state(target: str) -> dict[str, Any]:
    return {"released": _hold(target).released_at is not None}


def legal_hold_release_validate(target: str, payload: Any) -> dict[str, Any]:
    hold = _hold(target)
    if hold.released_at is not None:
        raise invalid(f"hold #{hold.pk} is already released")
    return {"released": True}


def legal_hold_release_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    hold = _hold(target)
    legal_hold_release(hold=hold, actor=actor)
    return f"hold #{hold.pk} released"


# -- schema lifecycle: target "schema_revision:NAME@VERSION" ---------------------------------


def _revision(target: str) -> SchemaRevision:
    name, _, version = _target_name(target, "schema_revision").rpartition("@")
    revision = (
        SchemaRevision.objects.select_related("schema")
        .filter(schema__name=name, version=int(version))
        .first()
        if version.isdigit()
        else None
    )
    if revision is None:
        raise invalid(f"no schema revision {target.partition(':')[2]!r}")
    return revision


def schema_status_state(target: str) -> dict[str, Any]:
    return {"status": _revision(target).status}


def schema_status_validate(target: str, payload: Any) -> dict[str, Any]:
    revision = _revision(target)
    status = payload.get("status") if isinstance(payload, dict) else None
    if status not in RevisionStatus.values:
        raise invalid(f"status: one of {', '.join(RevisionStatus.values)}")
    if status != revision.status and status not in ALLOWED_TRANSITIONS[revision.status]:
        raise invalid(f"{revision} cannot move from {revision.status} to {status}")
    return {"status": status}


def schema_status_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    revision = schema_revision_status_change(
        revision=_revision(target), status=payload["status"], actor=actor
    )
    return f"{revision} is {revision.status}"


# -- breaking-change rules of a schema: target "breaking_rules:SCHEMA" -----------------------

BREAKING_KEYS = ("category", "ignore", "ignore_only", "ignore_unstable_packages")


def _breaking_schema(target: str) -> Schema:
    name = _target_name(target, "breaking_rules")
    schema = Schema.objects.filter(name=name).first()
    if schema is None:
        raise invalid(f"no schema named {name!r}")
    return schema


def breaking_rules_state(target: str) -> dict[str, Any]:
    schema = _breaking_schema(target)
    return {
        "category": schema.breaking_category,
        "ignore": list(schema.breaking_ignore),
        "ignore_only": dict(schema.breaking_ignore_only),
        "ignore_unstable_packages": schema.breaking_ignore_unstable_packages,
    }


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and item for item in value)


def breaking_rules_validate(target: str, payload: Any) -> dict[str, Any]:
    _breaking_schema(target)
    if not isinstance(payload, dict):
        raise invalid("a breaking rule set is an object")
    unknown = sorted(set(payload) - set(BREAKING_KEYS))
    if unknown:
        raise invalid("unknown key(s) " + ", ".join(map(repr, unknown)))
    category = payload.get("category", DEFAULT_CATEGORY)
    if category not in CATEGORIES:
        raise invalid(f"category: one of {', '.join(CATEGORIES)}")
    ignore = payload.get("ignore") or []
    if not _strings(ignore):
        raise invalid("ignore: a list of proto files or directories")
    ignore_only = payload.get("ignore_only") or {}
    if not isinstance(ignore_only, dict) or not all(
        _strings(paths) for paths in ignore_only.values()
    ):
        raise invalid("ignore_only: a mapping of rule id or category -> list of paths")
    unstable = payload.get("ignore_unstable_packages", False)
    if not isinstance(unstable, bool):
        raise invalid("ignore_unstable_packages: true or false")
    try:
        RuleSet(
            use=(category,),
            ignore=tuple(ignore),
            ignore_only={rule: tuple(paths) for rule, paths in ignore_only.items()},
            ignore_unstable_packages=unstable,
        )
    except ValueError as exc:
        raise invalid(f"ignore_only: {exc}") from None
    return {
        "category": category,
        "ignore": list(ignore),
        "ignore_only": {rule: list(ignore_only[rule]) for rule in sorted(ignore_only)},
        "ignore_unstable_packages": unstable,
    }


def breaking_rules_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    schema = schema_breaking_rules_set(schema=_breaking_schema(target), actor=actor, **payload)
    return f"{schema.name} checked with {payload['category']}"


# -- catalogue metrics: target "metric:NAME", payload the definition (None: remove it) -------

METRIC_DEFAULTS: dict[str, Any] = {
    "kind": MetricDefinition.Kind.COUNTER,
    "help": "",
    "labels": [],
    "value_field": "",
    "only_when": "",
    "buckets": [],
    "max_series": 1000,
    "enabled": True,
}
MAX_METRIC_SERIES = 100_000


def _metric_name(target: str) -> str:
    name = _target_name(target, "metric")
    try:
        metric_name_validator(name)
    except ValidationError:
        raise invalid(f"{name!r} is not a Prometheus metric name") from None
    return name


def metric_definition_state(target: str) -> dict[str, Any] | None:
    definition = (
        MetricDefinition.objects.select_related("schema").filter(name=_metric_name(target)).first()
    )
    if definition is None:
        return None
    return {"schema": definition.schema.name} | {
        key: getattr(definition, key) for key in METRIC_DEFAULTS
    }


def _metric_fields(payload: dict) -> dict[str, Any]:
    values = METRIC_DEFAULTS | payload
    if values["kind"] not in MetricDefinition.Kind.values:
        raise invalid(f"kind: one of {', '.join(MetricDefinition.Kind.values)}")
    for key, limit in (("help", 300), ("value_field", 300), ("only_when", 300)):
        if not isinstance(values[key], str) or len(values[key]) > limit:
            raise invalid(f"{key}: text of at most {limit} characters")
    labels = values["labels"]
    if not isinstance(labels, list) or not all(
        isinstance(entry, dict)
        and set(entry) == {"label", "source"}
        and all(isinstance(v, str) for v in entry.values())
        for entry in labels
    ):
        raise invalid("labels: a list of {label: NAME, source: field:PATH | oneof:NAME}")
    buckets = values["buckets"]
    if not isinstance(buckets, list) or not all(
        isinstance(b, int | float) and not isinstance(b, bool) for b in buckets
    ):
        raise invalid("buckets: a list of numbers")
    series = values["max_series"]
    if (
        not isinstance(series, int)
        or isinstance(series, bool)
        or not 1 <= series <= MAX_METRIC_SERIES
    ):
        raise invalid(f"max_series: a whole number from 1 to {MAX_METRIC_SERIES}")
    if not isinstance(values["enabled"], bool):
        raise invalid("enabled: true or false")
    return {key: values[key] for key in METRIC_DEFAULTS}


def metric_definition_validate(target: str, payload: Any) -> dict[str, Any] | None:
    name = _metric_name(target)
    if payload is None:
        if not MetricDefinition.objects.filter(name=name).exists():
            raise invalid(f"no metric {name!r} to remove")
        return None
    if not isinstance(payload, dict):
        raise invalid("a metric definition is an object")
    unknown = sorted(set(payload) - set(METRIC_DEFAULTS) - {"schema"})
    if unknown:
        raise invalid("unknown key(s) " + ", ".join(map(repr, unknown)))
    schema = Schema.objects.filter(name=payload.get("schema") or "").first()
    if schema is None:
        raise invalid(f"schema: no schema named {payload.get('schema')!r}")
    fields = _metric_fields(payload)
    revision = schema.revisions.exclude(status=RevisionStatus.RETIRED).order_by("-version").first()
    if revision is None:
        raise invalid(f"{schema.name} has no live revision")
    # A label field still unclassified is refused when the change applies (the policies
    # proposed with it may classify it first); one classified personal or secret, now.
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    classifications = {
        path: Classification.INTERNAL for path, _ in leaf_fields(compiled.descriptor)
    }
    classifications |= {p: s.classification for p, s in field_policy_specs(revision).items()}
    try:
        metric_compile({"name": name, **fields}, compiled.descriptor, classifications)
    except MetricDefinitionError as exc:
        raise invalid(f"metric {name}: " + "; ".join(exc.errors)) from None
    return {"schema": schema.name, **fields}


def metric_definition_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    name = _metric_name(target)
    definition = MetricDefinition.objects.filter(name=name).first()
    if payload is None:
        if definition is not None:
            metric_definition_delete(definition=definition, actor=actor)
        return f"metric {name} removed"
    definition = definition or MetricDefinition(name=name)
    definition.schema = Schema.objects.get(name=payload["schema"])
    for key in METRIC_DEFAULTS:
        setattr(definition, key, payload[key])
    try:
        metric_definition_save(definition=definition, actor=actor)
    except MetricDefinitionError as exc:
        raise invalid(f"metric {name}: " + "; ".join(exc.errors)) from None
    return f"metric {name} saved"


# -- OTLP log routes: target "otlp_log_route:NAME", payload the route (None: remove it) -----

ROUTE_TEXT_LIMITS = {
    "match_event_name": 200,
    "match_scope": 200,
    "match_service": 200,
    "schema_name": 200,
    "description": 300,
}
MAX_ROUTE_PRIORITY = 1_000_000


def _route_name(target: str) -> str:
    name = _target_name(target, "otlp_log_route")
    if not slug_re.fullmatch(name) or len(name) > 100:
        raise invalid(f"route name {name!r}: letters, digits, '-' and '_' (at most 100)")
    return name


def otlp_log_route_state(target: str) -> dict[str, Any] | None:
    route = OtlpLogRoute.objects.filter(name=_route_name(target)).first()
    return None if route is None else {key: getattr(route, key) for key in ROUTE_DEFAULTS}


def otlp_log_route_validate(target: str, payload: Any) -> dict[str, Any] | None:
    """A route's settings: shell patterns, a priority, and a registered schema (blank
    rejects the matching records); None removes the route."""
    name = _route_name(target)
    if payload is None:
        if not OtlpLogRoute.objects.filter(name=name).exists():
            raise invalid(f"no OTLP log route {name!r} to remove")
        return None
    if not isinstance(payload, dict):
        raise invalid("an OTLP log route is an object")
    unknown = sorted(set(payload) - set(ROUTE_DEFAULTS))
    if unknown:
        raise invalid("unknown key(s) " + ", ".join(map(repr, unknown)))
    values = ROUTE_DEFAULTS | payload
    priority = values["priority"]
    if (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not 0 <= priority <= MAX_ROUTE_PRIORITY
    ):
        raise invalid(f"priority: a whole number from 0 to {MAX_ROUTE_PRIORITY}")
    for key, limit in ROUTE_TEXT_LIMITS.items():
        if not isinstance(values[key], str) or len(values[key]) > limit:
            raise invalid(f"{key}: text of at most {limit} characters")
    schema_name = values["schema_name"]
    if schema_name and not Schema.objects.filter(name=schema_name).exists():
        raise invalid(f"schema_name: no schema named {schema_name!r}")
    return {key: values[key] for key in ROUTE_DEFAULTS}


def otlp_log_route_apply(
    target: str, payload: Any, actor: AbstractBaseUser, author: AbstractBaseUser
) -> str:
    name = _route_name(target)
    if payload is None:
        otlp_log_route_delete(name=name, actor=actor)
        return f"OTLP log route {name} removed"
    route = otlp_log_route_save(name=name, actor=actor, **payload)
    return f"OTLP log route {route}"


def otlp_log_route_summary(target: str, payload: Any) -> str:
    name = target.partition(":")[2]
    if payload is None:
        return f"OTLP log route {name}: removed"
    return f"OTLP log route {name} -> {payload['schema_name'] or 'reject'}"


KINDS: dict[str, ChangeKindSpec] = {
    spec.kind: spec
    for spec in (
        ChangeKindSpec(
            ChangeKind.FIELD_POLICIES,
            state=field_policies_state,
            validate=field_policies_validate,
            apply=field_policies_apply,
            summary=field_policies_summary,
            relevant=field_policies_relevant,
            diff=field_policies_diff,
        ),
        ChangeKindSpec(
            ChangeKind.SCANNER_RULE,
            state=scanner_rule_state,
            validate=scanner_rule_validate,
            apply=scanner_rule_apply,
            summary=lambda target, payload: f"Scanner rule {target.partition(':')[2]}",
        ),
        ChangeKindSpec(
            ChangeKind.CLASS_RETENTION,
            state=class_retention_state,
            validate=class_retention_validate,
            apply=class_retention_apply,
            summary=lambda target, payload: (
                f"Retention of {target.partition(':')[2]}: {payload['retention_days']} days"
            ),
        ),
        ChangeKindSpec(
            ChangeKind.RETENTION_OVERRIDE,
            state=retention_override_state,
            validate=retention_override_validate,
            apply=retention_override_apply,
            summary=lambda target, payload: (
                f"Retention override of {target.partition(':')[2]}: "
                + ("removed" if payload is None else f"{payload['retention_days']} days")
            ),
        ),
        ChangeKindSpec(
            ChangeKind.LEGAL_HOLD_PLACE,
            state=legal_hold_place_state,
            validate=legal_hold_place_validate,
            apply=legal_hold_place_apply,
            summary=lambda target, payload: f"Legal hold: {payload['reason'][:200]}",
            restorable=False,
        ),
        ChangeKindSpec(
            ChangeKind.LEGAL_HOLD_RELEASE,
            state=legal_hold_release_state,
            validate=legal_hold_release_validate,
            apply=legal_hold_release_apply,
            summary=lambda target, payload: f"Release legal hold #{target.partition(':')[2]}",
            restorable=False,
        ),
        ChangeKindSpec(
            ChangeKind.SCHEMA_STATUS,
            state=schema_status_state,
            validate=schema_status_validate,
            apply=schema_status_apply,
            summary=lambda target, payload: f"{target.partition(':')[2]} -> {payload['status']}",
        ),
        ChangeKindSpec(
            ChangeKind.BREAKING_RULES,
            state=breaking_rules_state,
            validate=breaking_rules_validate,
            apply=breaking_rules_apply,
            summary=lambda target, payload: (
                f"Breaking rules of {target.partition(':')[2]}: {payload['category']}"
            ),
        ),
        ChangeKindSpec(
            ChangeKind.METRIC_DEFINITION,
            state=metric_definition_state,
            validate=metric_definition_validate,
            apply=metric_definition_apply,
            diff=lambda base, payload: [
                row for row in dict_diff(base, payload) if row.old != row.new
            ],
            summary=lambda target, payload: (
                f"Metric {target.partition(':')[2]}" + (": removed" if payload is None else "")
            ),
        ),
        ChangeKindSpec(
            ChangeKind.OTLP_LOG_ROUTE,
            state=otlp_log_route_state,
            validate=otlp_log_route_validate,
            apply=otlp_log_route_apply,
            summary=otlp_log_route_summary,
        ),
    )
}


def kind_spec(kind: str) -> ChangeKindSpec:
    """The behaviour of ``kind``; an unknown kind is an invalid change."""
    try:
        return KINDS[kind]
    except KeyError:
        raise invalid(f"unknown kind of change {kind!r}") from None


def change_diff(kind: str, base: Any, payload: Any) -> list[DiffRow]:
    """Field by field: the target's state the request was based on vs the proposal."""
    spec = kind_spec(kind)
    if spec.diff is not None:
        return spec.diff(base, payload)
    return dict_diff(base, payload)


def target_lock(target: str) -> None:
    """Serialise every change to one target for the rest of the caller's transaction."""
    from django.db import connection

    assert transaction.get_connection().in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", [target])
