"""OTLP metric data points as raw ``telemetry.service_metric.v1`` samples. Pure.

Names are translated the way Prometheus translates OTLP names (see ``prometheus_name``).
Sums become counters (delta added, cumulative snapshots turned into increments by the
service metrics store), gauges and non-monotonic sums gauges, explicit-bucket histograms
three counters (``_bucket`` per ``le``, ``_sum``, ``_count``). Exponential histograms and
summaries are refused per data point with a reason.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from governance.defaults import PLATFORM_SCHEMAS

from ..pipeline import BatchError, RawItem, Rejection
from .codes import OtlpCode
from .values import any_value_plain, plain_text, rfc3339_nanos

SERVICE_METRIC_SCHEMA = next(s.name for s in PLATFORM_SCHEMAS if s.event_class == "service_metric")
# UCUM units Prometheus spells out (the translator's table, the common part of it).
UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
    "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes",
    "MiBy": "mebibytes", "GiBy": "gibibytes", "KBy": "kilobytes", "MBy": "megabytes",
    "GBy": "gigabytes", "bit": "bits", "m": "meters", "V": "volts", "A": "amperes",
    "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius", "Hz": "hertz", "%": "percent",
}  # fmt: skip
PER_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
             "y": "year"}  # fmt: skip
# Attributes that name a person, a session, an address or a header: never a label (the
# semantic conventions' personal attributes; values of secret-named keys are redacted and
# then left out by the service metrics store too).
PERSONAL_LABEL_RE = re.compile(
    r"^(user|enduser|session|client|device|source|network_peer|user_agent)(_|$)"
    r"|^http_(request|response)_header_|^url_(full|query|path)$|email|(^|_)ip$|address$"
)
INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_:]+")
REPEATED_UNDERSCORES = re.compile(r"__+")
KIND = {"counter": "KIND_COUNTER", "gauge": "KIND_GAUGE"}
TEMPORALITY = {
    AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA: "TEMPORALITY_DELTA",
    AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE: "TEMPORALITY_CUMULATIVE",
}


def prometheus_name(name: str, unit: str, *, counter: bool, ratio_gauge: bool = False) -> str:
    """The Prometheus name of an OTel metric: characters outside ``[a-zA-Z0-9_:]`` (dots,
    dashes, slashes) become ``_`` (repeats folded), the unit is appended in words unless the
    name already ends with it (``s`` -> ``_seconds``, ``By`` -> ``_bytes``, ``1/s`` ->
    ``_per_second``, ``{requests}`` annotations dropped, ``1`` on a gauge -> ``_ratio``), and
    counters end in ``_total``. A name starting with a digit gets a leading ``_``."""
    words = _unit_words(unit, ratio_gauge=ratio_gauge)
    base = REPEATED_UNDERSCORES.sub("_", INVALID_NAME_CHARS.sub("_", name)).strip("_")
    if base[:1].isdigit():
        base = f"_{base}"
    if counter:
        base = base.removesuffix("_total")
    if words and not base.endswith(f"_{words}"):
        base = f"{base}_{words}"
    return f"{base}_total" if counter else base


def _unit_words(unit: str, *, ratio_gauge: bool) -> str:
    unit = re.sub(r"\{[^}]*\}", "", unit).strip()
    if unit == "1":
        return "ratio" if ratio_gauge else ""
    if not unit:
        return ""
    main, _, per = unit.partition("/")
    parts = []
    if main and main != "1":
        parts.append(UNIT_WORDS.get(main, main))
    if per:
        parts.append(f"per_{PER_WORDS.get(per, UNIT_WORDS.get(per, per))}")
    return REPEATED_UNDERSCORES.sub("_", INVALID_NAME_CHARS.sub("_", "_".join(parts))).strip("_")


def metric_items(
    request: ExportMetricsServiceRequest, *, max_points: int
) -> list[tuple[str, RawItem | Rejection]]:
    """Each data point's path and its raw samples' items (or why it has none), in order.

    One histogram point yields several samples, all under its own path.
    """
    items: list[tuple[str, RawItem | Rejection]] = []
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = {
            kv.key: plain_text(any_value_plain(kv.value))
            for kv in resource_metrics.resource.attributes
        }
        service = resource.get("service.name", "")
        instance = resource.get("service.instance.id", "")
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            for m, metric in enumerate(scope_metrics.metrics):
                path = f"resourceMetrics[{r}].scopeMetrics[{s}].metrics[{m}]"
                items.extend(_metric_items(metric, path, service, instance))
                if len(items) > max_points:
                    raise BatchError(
                        "too_many_events",
                        f"request has more than {max_points} data points (and histogram "
                        f"samples); at most {max_points} are accepted per request",
                    )
    return items


def _metric_items(
    metric: Metric, path: str, service: str, instance: str
) -> list[tuple[str, RawItem | Rejection]]:
    kind = metric.WhichOneof("data")
    if kind in ("exponential_histogram", "summary"):
        reason = Rejection(
            OtlpCode.UNSUPPORTED_METRIC_TYPE,
            f"{kind} data points are not accepted: export explicit-bucket histograms",
            "data",
        )
        points = getattr(metric, kind).data_points
        return [(f"{path}.{_camel(kind)}.dataPoints[{i}]", reason) for i in range(len(points))]
    if kind is None:
        return []
    data = getattr(metric, kind)
    temporality = TEMPORALITY.get(getattr(data, "aggregation_temporality", 0), "")
    monotonic = kind == "sum" and data.is_monotonic
    name = prometheus_name(
        metric.name,
        metric.unit,
        counter=monotonic or kind == "histogram",
        ratio_gauge=not monotonic,
    )
    if kind == "histogram":
        name = name.removesuffix("_total")
    if not name:
        return [
            (path, Rejection(OtlpCode.INVALID_METRIC_NAME, "metric has no usable name", "name"))
        ]
    out: list[tuple[str, RawItem | Rejection]] = []
    for i, point in enumerate(data.data_points):
        point_path = f"{path}.{kind}.dataPoints[{i}]"
        labels = {
            kv.key: plain_text(any_value_plain(kv.value))
            for kv in point.attributes
            if not PERSONAL_LABEL_RE.search(kv.key.replace(".", "_").replace("-", "_").lower())
        }
        common = {
            "service": service,
            "instance": instance,
            "unit": metric.unit,
            "labels": labels,
        }
        stamp = rfc3339_nanos(point.time_unix_nano) if point.time_unix_nano else None
        if kind == "histogram":
            samples = _histogram_samples(name, point)
            temporality_of = temporality
        elif monotonic:
            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
            samples = [(name, {}, value)]
            temporality_of = temporality
        else:
            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
            samples = [(name, {}, value)]
            temporality_of = ""
        for sample_name, extra_labels, value in samples:
            sample = {
                **common,
                "name": sample_name,
                "kind": KIND["counter" if temporality_of else "gauge"],
                "value": float(value),
                "labels": {**labels, **extra_labels},
            }
            if temporality_of:
                sample["temporality"] = temporality_of
            envelope: dict[str, Any] = {"source": service} if service else {}
            if stamp:
                envelope["occurred_at"] = stamp
            envelope["event_id"] = _sample_id(
                sample, point.time_unix_nano, point.start_time_unix_nano
            )
            sample["envelope"] = envelope
            out.append((point_path, RawItem(schema=SERVICE_METRIC_SCHEMA, body=sample)))
    return out


def _histogram_samples(name: str, point: Any) -> list[tuple[str, dict[str, str], float]]:
    samples = [(f"{name}_count", {}, float(point.count))]
    if point.HasField("sum"):
        samples.append((f"{name}_sum", {}, point.sum))
    running = 0
    bounds = list(point.explicit_bounds)
    for index, count in enumerate(point.bucket_counts):
        running += count
        le = repr(float(bounds[index])) if index < len(bounds) else "+Inf"
        samples.append((f"{name}_bucket", {"le": le}, float(running)))
    return samples


def _sample_id(sample: dict[str, Any], time_nanos: int, start_nanos: int) -> str:
    """The same sample sent twice has the same id, so a retried export deduplicates."""
    labels = ",".join(f"{k}={v}" for k, v in sorted(sample["labels"].items()))
    parts = (sample["service"], sample["instance"], sample["name"], labels, start_nanos, time_nanos)
    text = "|".join(str(part) for part in parts)
    return f"otlp:{hashlib.sha256(text.encode()).hexdigest()[:40]}"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
