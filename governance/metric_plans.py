"""Aggregate metrics from ingested events: compiled per schema revision, pure functions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from .choices import Classification
from .schemas import leaf_fields

DEFAULT_BUCKETS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
# Values of these classifications must never become label values.
FORBIDDEN_LABEL_CLASSES = frozenset(
    {Classification.PERSONAL, Classification.SECRET, Classification.PSEUDONYMOUS_ID}
)
OTHER = "other"


class MetricDefinitionError(Exception):
    """The definition cannot be used; ``errors`` names each problem."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


@dataclass(frozen=True)
class LabelSource:
    label: str
    kind: str  # "field" or "oneof"
    path: tuple[str, ...]  # field path, or (oneof name,)
    members: tuple[str, ...] = ()  # oneof member names


@dataclass(frozen=True)
class CompiledMetric:
    name: str
    kind: str
    help: str
    labels: tuple[LabelSource, ...]
    value_path: tuple[str, ...]
    only_when: tuple[str, ...]
    buckets: tuple[float, ...]
    max_series: int

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(source.label for source in self.labels)

    def observe(self, payload: Mapping[str, Any]) -> tuple[tuple[str, ...], float] | None:
        """The label values and value of one stored event, or None if it does not count."""
        if self.only_when and _lookup(payload, self.only_when) is None:
            return None
        value = 1.0
        if self.kind == "histogram":
            raw = _lookup(payload, self.value_path)
            try:
                value = float(raw)
            except (TypeError, ValueError):
                return None
            if not math.isfinite(value):
                return None
        labels = tuple(_label_value(source, payload) for source in self.labels)
        return labels, value


def _lookup(payload: Mapping[str, Any], path: Sequence[str]) -> Any:
    value: Any = payload
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _label_value(source: LabelSource, payload: Mapping[str, Any]) -> str:
    if source.kind == "oneof":
        for member in source.members:
            if member in payload:
                return member
        return ""
    value = _lookup(payload, source.path)
    if value is None or isinstance(value, Mapping | list):
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def metric_compile(
    definition: Mapping[str, Any],
    descriptor: Descriptor,
    classifications: Mapping[str, str],
) -> CompiledMetric:
    """Check a definition against the schema and its field policies, and compile it.

    Refused: unknown fields or oneofs, label fields classified personal, secret or
    pseudonymous_id (or not classified at all), a histogram without a numeric field.
    """
    errors = []
    leaves = dict(leaf_fields(descriptor))
    labels = []
    seen = set()
    for entry in definition.get("labels") or []:
        label, source = str(entry.get("label", "")), str(entry.get("source", ""))
        kind, _, target = source.partition(":")
        if not label.isidentifier() or label in seen or label.startswith("__"):
            errors.append(f"label {label!r}: not a usable label name (or repeated)")
            continue
        seen.add(label)
        if kind == "oneof":
            oneof = descriptor.oneofs_by_name.get(target)
            if oneof is None:
                errors.append(f"label {label}: no oneof {target!r} in {descriptor.full_name}")
                continue
            members = tuple(field.name for field in oneof.fields)
            labels.append(LabelSource(label, "oneof", (target,), members))
        elif kind == "field":
            if target not in leaves:
                errors.append(f"label {label}: no field {target!r}")
                continue
            classification = classifications.get(target)
            if classification is None:
                errors.append(f"label {label}: field {target} is not classified yet")
            elif classification in FORBIDDEN_LABEL_CLASSES:
                errors.append(
                    f"label {label}: field {target} is classified {classification}; "
                    "such values never become labels"
                )
            else:
                labels.append(LabelSource(label, "field", tuple(target.split("."))))
        else:
            errors.append(f"label {label}: source must be field:PATH or oneof:NAME")
    kind = definition.get("kind", "counter")
    value_path: tuple[str, ...] = ()
    if kind == "histogram":
        value_field = definition.get("value_field") or ""
        field = leaves.get(value_field)
        if field is None or field.cpp_type not in _NUMERIC_CPP_TYPES:
            errors.append(f"histogram needs a numeric value_field; {value_field!r} is not one")
        value_path = tuple(value_field.split("."))
    only_when = definition.get("only_when") or ""
    if only_when and only_when.split(".")[0] not in descriptor.fields_by_name:
        errors.append(f"only_when: no field {only_when!r}")
    buckets = tuple(sorted(float(b) for b in (definition.get("buckets") or DEFAULT_BUCKETS)))
    if errors:
        raise MetricDefinitionError(errors)
    return CompiledMetric(
        name=definition["name"],
        kind=kind,
        help=definition.get("help") or f"{definition['name']} from ingested telemetry",
        labels=tuple(labels),
        value_path=value_path,
        only_when=tuple(only_when.split(".")) if only_when else (),
        buckets=buckets,
        max_series=int(definition.get("max_series") or 1000),
    )


_NUMERIC_CPP_TYPES = frozenset(
    {
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
        FieldDescriptor.CPPTYPE_DOUBLE,
        FieldDescriptor.CPPTYPE_FLOAT,
    }
)
