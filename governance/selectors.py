"""Reads of governance state, including the per-process cache of compiled schema plans."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from django.db.models import Prefetch

from telemetry_platform.conf import telemetry_settings

from . import ports
from .choices import INGESTIBLE_STATUSES, RevisionStatus
from .defaults import default_scanner_rules
from .envelope import envelope_reader_compile
from .fastdict import compile_dict_renderer
from .fastjson import compile_json_parser
from .metric_plans import CompiledMetric, MetricDefinitionError, metric_compile
from .models import (
    FieldPolicy,
    MetricDefinition,
    PolicyEpoch,
    RetentionOverride,
    ScannerRule,
    Schema,
    SchemaRevision,
)
from .plans import SchemaPlan, SchemaRefusal
from .redaction import PolicySpec, redaction_plan_compile
from .scanners import CompiledScanner, scanner_compile, sensitive_key_matcher
from .scanners import ScannerRule as ScannerRule_
from .schemas import CompiledSchema, leaf_fields, load_schema

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _IndexEntry:
    schema_name: str
    event_class: str
    retention_days: int
    revision: SchemaRevision | None  # the newest ingestible revision
    refusal: SchemaRefusal | None
    by_version: Mapping[int, SchemaRevision]


def _effective_retention(schema: Schema) -> int:
    try:
        return schema.retention.retention_days
    except RetentionOverride.DoesNotExist:
        return schema.event_class.retention_days


# Rows of PolicyEpoch: the policy epoch (any schema or policy change) and the
# suppression epoch (only the data-subject suppression list changed).
POLICY_EPOCH = 1
SUPPRESSION_EPOCH = 2


def policy_epoch_get() -> int:
    """Return the current policy epoch (0 before any change was recorded)."""
    return policy_epochs_get()[0]


def policy_epochs_get() -> tuple[int, int]:
    """Return the policy and suppression epochs, in one query (0 when never bumped)."""
    values = dict(
        PolicyEpoch.objects.filter(pk__in=(POLICY_EPOCH, SUPPRESSION_EPOCH)).values_list(
            "pk", "value"
        )
    )
    return values.get(POLICY_EPOCH, 0), values.get(SUPPRESSION_EPOCH, 0)


def schema_revision_ingestible(revisions: list[SchemaRevision]) -> SchemaRevision | None:
    """Return the newest active or deprecated revision, or None."""
    for revision in sorted(revisions, key=lambda r: r.version, reverse=True):
        if revision.status in INGESTIBLE_STATUSES:
            return revision
    return None


def _refusal_for(revisions: list[SchemaRevision]) -> SchemaRefusal:
    statuses = {revision.status for revision in revisions}
    if statuses == {RevisionStatus.RETIRED}:
        return SchemaRefusal("schema_retired", "the revision is retired")
    if RevisionStatus.DRAFT in statuses:
        return SchemaRefusal("schema_draft", "the revision is a draft, not yet active")
    return SchemaRefusal("schema_inactive", "this schema has no active revision")


class SchemaPlanCache:
    """Per-process cache of schema plans, refreshed when the policy epoch moves.

    The epoch is read at most once per ``PLAN_REFRESH_SECONDS``; between reads a
    batch resolves schemas from memory with no database query per event.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._suppression_epoch: int | None = None
        self._checked_at = 0.0
        self._index: dict[str, _IndexEntry] = {}
        self._plans: dict[tuple[int, str], SchemaPlan] = {}
        self._compiled_scanner: CompiledScanner | None = None
        # Subjects whose events are refused (data-subject suppressions), by their hashes.
        self.suppressed: frozenset[str] = frozenset()

    def refresh(self, *, force: bool = False, throttle: bool = True) -> None:
        """Reload the schema index if the policy epoch changed (or ``force``).

        With ``throttle`` the epoch is read at most once per PLAN_REFRESH_SECONDS.
        """
        now = time.monotonic()
        recent = now - self._checked_at < telemetry_settings.PLAN_REFRESH_SECONDS
        if not force and throttle and recent:
            return
        epoch, suppression_epoch = policy_epochs_get()
        with self._lock:
            if force or epoch != self._epoch:
                self._index = self._load_index()
                # Any change (schema, status, field policy, scanner rule) may alter a
                # plan; compiling is cheap next to serving a stale policy.
                self._plans = {}
                self._compiled_scanner = None
                self.suppressed = ports.suppressed_subject_hashes()
            elif suppression_epoch != self._suppression_epoch:
                # Only the suppression list moved: the compiled plans stay valid.
                self.suppressed = ports.suppressed_subject_hashes()
            self._epoch, self._suppression_epoch = epoch, suppression_epoch
            # Only once the index is loaded: a thread that sees a recent check must find
            # the index that check loaded, not the one it is replacing (gthread workers
            # serve several requests per process at once).
            self._checked_at = now

    @staticmethod
    def _load_index() -> dict[str, _IndexEntry]:
        index = {}
        schemas = Schema.objects.select_related("event_class", "retention").prefetch_related(
            Prefetch("revisions", queryset=SchemaRevision.objects.defer("proto_files"))
        )
        for schema in schemas:
            revisions = list(schema.revisions.all())
            revision = schema_revision_ingestible(revisions)
            index[schema.name] = _IndexEntry(
                schema_name=schema.name,
                event_class=schema.event_class_id,
                retention_days=_effective_retention(schema),
                revision=revision,
                refusal=None if revision else _refusal_for(revisions),
                by_version={r.version: r for r in revisions},
            )
        return index

    def get(
        self, schema_name: str, version: int | None = None
    ) -> SchemaPlan | SchemaRefusal | None:
        """Return the plan for ``schema_name``, why it is refused, or None if unknown.

        Without ``version`` the newest active or deprecated revision validates; a pinned
        version must itself be active or deprecated.
        """
        entry = self._index.get(schema_name)
        if entry is None:
            return None
        if version is None:
            revision = entry.revision
            if revision is None:
                return entry.refusal
        else:
            revision = entry.by_version.get(version)
            if revision is None:
                return SchemaRefusal("unknown_schema_version", f"no revision {version}")
            if revision.status not in INGESTIBLE_STATUSES:
                return _refusal_for([revision])
        plan = self._plans.get((revision.pk, revision.status))
        if plan is None:
            plan = self._compile(entry, revision)
        return plan

    def event_class_of(self, schema_name: str) -> str | None:
        """Return the event class of a registered ``NAME`` or ``NAME@N``, else None."""
        entry = self._index.get(schema_name.partition("@")[0])
        return entry.event_class if entry else None

    def _compile(self, entry: _IndexEntry, revision: SchemaRevision) -> SchemaPlan:
        compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
        plan = SchemaPlan(
            schema_name=entry.schema_name,
            event_class=entry.event_class,
            retention_days=entry.retention_days,
            revision_id=revision.pk,
            version=revision.version,
            status=revision.status,
            compiled=compiled,
            roles=MappingProxyType(dict(revision.roles)),
            envelope=envelope_reader_compile(compiled.descriptor, revision.roles),
            json_parser=compile_json_parser(compiled.descriptor, compiled.message_class),
            dict_renderer=compile_dict_renderer(compiled.descriptor),
            metrics=_metrics_for(entry.schema_name, revision, compiled),
            redaction=redaction_plan_compile(
                compiled.descriptor,
                field_policy_specs(revision),
                key_id=telemetry_settings.HASH_KEY_ID,
                key=telemetry_settings.HASH_KEYS[telemetry_settings.HASH_KEY_ID],
                scanner=self._scanner(),
                sensitive_key=sensitive_key_matcher(telemetry_settings.SENSITIVE_KEY_PATTERN),
                unclassified=telemetry_settings.UNCLASSIFIED_FIELDS,
                unhashed_pseudonym=telemetry_settings.UNHASHED_PSEUDONYM,
            ),
        )
        with self._lock:
            self._plans[(revision.pk, revision.status)] = plan
        return plan

    def _scanner(self) -> CompiledScanner:
        # One compiled scanner serves every plan of the same epoch.
        if self._compiled_scanner is None:
            self._compiled_scanner = content_scanner_get()
        return self._compiled_scanner

    def clear(self) -> None:
        """Forget everything (tests use this between database resets)."""
        with self._lock:
            self._epoch = None
            self._suppression_epoch = None
            self._checked_at = 0.0
            self._index = {}
            self._plans = {}
            self._compiled_scanner = None
            self.suppressed = frozenset()


schema_plans = SchemaPlanCache()


def field_policy_specs(revision: SchemaRevision) -> dict[str, PolicySpec]:
    """Return path -> policy of one revision (unclassified paths are absent)."""
    return {
        policy.path: PolicySpec(
            classification=policy.classification,
            action=policy.action,
            keep_chars=policy.keep_chars,
            scan=policy.scan,
        )
        for policy in FieldPolicy.objects.filter(revision=revision)
    }


def revision_leaf_paths(revision: SchemaRevision) -> list[str]:
    """Every value-holding field path of a revision, in declaration order."""
    compiled = load_schema(bytes(revision.descriptor_set), revision.message_name)
    return [path for path, _ in leaf_fields(compiled.descriptor)]


def policy_coverage(revision: SchemaRevision) -> list[str]:
    """The revision's field paths that have no classification yet."""
    classified = set(FieldPolicy.objects.filter(revision=revision).values_list("path", flat=True))
    return [path for path in revision_leaf_paths(revision) if path not in classified]


def content_scanner_get() -> CompiledScanner:
    """Compile the built-in scanners plus the enabled custom rules."""
    custom = [
        ScannerRule_(
            name=rule.name,
            pattern=rule.pattern,
            action=rule.action,
            replacement=rule.replacement,
            keep_chars=rule.keep_chars,
        )
        for rule in ScannerRule.objects.filter(enabled=True).order_by("name")
    ]
    return scanner_compile(
        [*default_scanner_rules(), *custom],
        key_id=telemetry_settings.HASH_KEY_ID,
        key=telemetry_settings.HASH_KEYS[telemetry_settings.HASH_KEY_ID],
    )


def _metrics_for(
    schema_name: str, revision: SchemaRevision, compiled: CompiledSchema
) -> tuple[CompiledMetric, ...]:
    classifications = {
        path: spec.classification for path, spec in field_policy_specs(revision).items()
    }
    metrics = []
    for definition in MetricDefinition.objects.filter(schema__name=schema_name, enabled=True):
        try:
            metrics.append(
                metric_compile(
                    metric_definition_dict(definition), compiled.descriptor, classifications
                )
            )
        except MetricDefinitionError as exc:
            logger.warning("metric %s skipped for %s: %s", definition.name, revision, exc)
    return tuple(metrics)


def metric_definition_dict(definition: MetricDefinition) -> dict:
    """The definition as the pure compiler takes it."""
    return {
        "name": definition.name,
        "kind": definition.kind,
        "help": definition.help,
        "labels": definition.labels,
        "value_field": definition.value_field,
        "only_when": definition.only_when,
        "buckets": definition.buckets,
        "max_series": definition.max_series,
    }
