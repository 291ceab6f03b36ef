"""Runtime delivery diagnostics snapshots -> one ``service_metric`` event per counter (pure).

The shape is the runtime's fanout metrics answer (``GET .../khala/fanout/metrics``):
``delivery_metrics`` (poll, throttling, fairness and slow-consumer counters),
``topic_windows`` (one object per topic: queue depth, drops, stale-cursor counters),
and optionally ``consumers`` (per consumer), ``counters`` (any flat map) and
``service`` / ``instance`` / ``timestamp``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from ingest.pipeline import RawItem

from .common import (
    ArtifactCode,
    ArtifactError,
    ArtifactItem,
    ItemRejection,
    ParsedArtifact,
    describe_non_number,
    deterministic_event_id,
    json_document,
    number_or_none,
    parse_timestamp,
    rfc3339,
)

SERVICE_METRIC_SCHEMA = "telemetry.service_metric.v1"
TIMESTAMP_FIELDS = ("timestamp", "captured_at", "generated_at", "observed_at")
# Values that describe a topic or consumer (labels or notes), not counters.
DESCRIPTIVE_FIELDS = frozenset(
    {"topic", "topic_class", "qos_tier", "consumer", "consumer_id", "last_violation_reason"}
)
LABEL_FIELDS = ("topic", "topic_class", "qos_tier")
# Names ending so are running totals (cumulative counters); the rest are gauges.
COUNTER_SUFFIXES = ("_total", "_count", "polls", "_evictions", "_messages", "_errors")


def counter_kind(name: str) -> str:
    """``KIND_COUNTER`` for running totals (``total_polls``, ``dropped_messages``), else gauge."""
    return "KIND_COUNTER" if name.endswith(COUNTER_SUFFIXES) else "KIND_GAUGE"


class _Builder:
    def __init__(
        self, *, prefix: str, service: str, instance: str, occurred_at: datetime, source: str
    ) -> None:
        self.prefix = prefix
        self.service = service
        self.instance = instance
        self.occurred_at = occurred_at
        self.source = source
        self.parsed = ParsedArtifact()

    def group(
        self, ref: str, scope: str, values: Mapping[str, Any], labels: dict[str, str]
    ) -> None:
        for key, raw in values.items():
            key = str(key)
            if key in DESCRIPTIVE_FIELDS:
                continue
            if key == "recent_disconnect_causes" and isinstance(raw, list):
                self.causes(f"{ref}.{key}", raw, labels)
                continue
            name = f"{self.prefix}.{scope}{key}" if self.prefix else f"{scope}{key}"
            self.metric(f"{ref}.{key}", name, raw, labels, counter_kind(key))

    def causes(self, ref: str, causes: list, labels: dict[str, str]) -> None:
        # The runtime keeps the last 32 disconnect causes: expose how many of each.
        tally = Counter(cause for cause in causes if isinstance(cause, str) and cause)
        name = f"{self.prefix}.recent_disconnects" if self.prefix else "recent_disconnects"
        for cause, count in sorted(tally.items()):
            self.metric(f"{ref}[{cause}]", name, count, {**labels, "cause": cause}, "KIND_GAUGE")

    def metric(self, ref: str, name: str, raw: Any, labels: dict[str, str], kind: str) -> None:
        value = number_or_none(raw)
        if value is None:
            code, message = describe_non_number(raw)
            self.parsed.entries.append(ItemRejection(ref, code, message))
            return
        if kind == "KIND_COUNTER" and value < 0:
            self.parsed.entries.append(
                ItemRejection(ref, ArtifactCode.NEGATIVE_COUNTER, "a running total cannot be < 0")
            )
            return
        label_key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        envelope: dict[str, Any] = {
            "event_id": deterministic_event_id(
                self.service, self.instance, rfc3339(self.occurred_at), name, label_key
            ),
            "occurred_at": rfc3339(self.occurred_at),
        }
        if self.source:
            envelope["source"] = self.source
        event: dict[str, Any] = {
            "envelope": envelope,
            "name": name,
            "kind": kind,
            "value": value,
            "labels": labels,
            "service": self.service,
            "instance": self.instance,
        }
        if kind == "KIND_COUNTER":
            event["temporality"] = "TEMPORALITY_CUMULATIVE"
        self.parsed.entries.append(
            ArtifactItem(ref, RawItem(schema=SERVICE_METRIC_SCHEMA, body=event))
        )


def _entries(node: Any, key_field: str) -> Iterator[tuple[str, Any]]:
    """Entries of a list of objects (each naming itself in ``key_field``) or of a map."""
    if isinstance(node, list):
        for index, entry in enumerate(node):
            yield f"[{index}]", entry
    elif isinstance(node, Mapping):
        for name, entry in node.items():
            if isinstance(entry, Mapping) and key_field not in entry:
                entry = {**entry, key_field: str(name)}
            yield f".{name}", entry


def diagnostics_snapshot_parse(
    content: bytes,
    *,
    now: datetime,
    service: str = "",
    instance: str = "",
    source: str = "",
    prefix: str = "khala.delivery",
) -> ParsedArtifact:
    """Turn a delivery diagnostics snapshot into service_metric events, one per counter.

    Counters are labelled by ``topic`` (and ``topic_class``/``qos_tier``) or ``consumer``.
    Running totals are sent as cumulative counters (snapshots), the rest as gauges. A
    snapshot without a timestamp is dated ``now`` (so re-sending it stores it again).
    """
    document = json_document(content)
    if not isinstance(document, dict):
        raise ArtifactError(ArtifactCode.NOT_AN_OBJECT, "snapshot must be a JSON object")
    service = service or _text(document.get("service")) or "runtime"
    instance = instance or _text(document.get("instance"))
    stamp_field = next((name for name in TIMESTAMP_FIELDS if name in document), "")
    warnings = []
    if stamp_field:
        occurred_at = parse_timestamp(document[stamp_field], field_name=stamp_field)
    else:
        occurred_at = now
        warnings.append("snapshot has no timestamp: dated at ingest (re-sending stores it again)")
    builder = _Builder(
        prefix=prefix, service=service, instance=instance, occurred_at=occurred_at, source=source
    )
    base_labels = {"driver": document["driver"]} if _text(document.get("driver")) else {}
    found = False
    for section in ("delivery_metrics", "counters"):
        values = document.get(section)
        if values is None:
            continue
        found = True
        if not isinstance(values, Mapping):
            builder.parsed.entries.append(
                ItemRejection(section, ArtifactCode.NOT_AN_OBJECT, f"'{section}' must be an object")
            )
            continue
        builder.group(section, "", values, dict(base_labels))
    for section, key_field, scope in (
        ("topic_windows", "topic", "topic."),
        ("topics", "topic", "topic."),
        ("consumers", "consumer", "consumer."),
    ):
        node = document.get(section)
        if node is None:
            continue
        found = True
        if not isinstance(node, list | Mapping):
            builder.parsed.entries.append(
                ItemRejection(section, ArtifactCode.NOT_AN_OBJECT, f"'{section}' must be a list")
            )
            continue
        for suffix, entry in _entries(node, key_field):
            ref = f"{section}{suffix}"
            if not isinstance(entry, Mapping):
                builder.parsed.entries.append(
                    ItemRejection(ref, ArtifactCode.NOT_AN_OBJECT, "entry must be an object")
                )
                continue
            name = _text(entry.get(key_field)) or _text(entry.get(f"{key_field}_id"))
            if not name:
                builder.parsed.entries.append(
                    ItemRejection(
                        ref, ArtifactCode.MISSING_FIELD, f"entry has no '{key_field}' to label by"
                    )
                )
                continue
            labels = {**base_labels, key_field: name}
            for label in LABEL_FIELDS:
                if label != key_field and _text(entry.get(label)):
                    labels[label] = entry[label]
            builder.group(ref, scope, entry, labels)
    if not found:
        raise ArtifactError(
            ArtifactCode.EMPTY_ARTIFACT,
            "snapshot has none of delivery_metrics, counters, topic_windows, topics, consumers",
        )
    builder.parsed.warnings.extend(warnings)
    builder.parsed.facts = {
        "service": service,
        "instance": instance,
        "occurred_at": rfc3339(occurred_at),
    }
    return builder.parsed


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
