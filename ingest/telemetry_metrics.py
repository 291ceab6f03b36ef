"""Aggregate telemetry metrics kept in Redis: shared by every worker, surviving deploys.

Counters derived from events live in Redis hashes (one per metric, a field per label
set), so every gunicorn worker adds to the same series and a deploy does not reset
them (a reset would fire rate()-based alerts wrongly). They are derived data: an
accepted event's only copy is always in PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

import redis
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from governance.metric_plans import OTHER, CompiledMetric
from telemetry_platform.redis_client import redis_client

logger = logging.getLogger(__name__)
PREFIX = "tgp:metric:"

# KEYS[1] data hash, KEYS[2] folded counter key. ARGV: max_series, then pairs of
# (series field, increment). A new series beyond max_series is folded into "other".
RECORD_SCRIPT = """
local max_series = tonumber(ARGV[1])
for i = 2, #ARGV - 1, 3 do
  local series, field, amount = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('HEXISTS', KEYS[1], field) == 0
     and redis.call('SCARD', KEYS[3]) >= max_series
     and redis.call('SISMEMBER', KEYS[3], series) == 0 then
    field = string.gsub(field, '^[^|]*', ARGV[#ARGV])
    redis.call('INCRBY', KEYS[2], 1)
  else
    redis.call('SADD', KEYS[3], series)
  end
  redis.call('HINCRBYFLOAT', KEYS[1], field, amount)
end
return 1
"""


@lru_cache(maxsize=1)
def _record_script() -> redis.commands.core.Script:
    # Registered once per process: it hashes the script text.
    return redis_client().register_script(RECORD_SCRIPT)


def _series_key(labels: Sequence[str]) -> str:
    return json.dumps(list(labels), separators=(",", ":"))


def _fields(metric: CompiledMetric, labels: tuple[str, ...], value: float) -> Iterator[tuple]:
    series = _series_key(labels)
    if metric.kind == "counter":
        yield series, f"{series}|c", value
        return
    for bound in metric.buckets:
        # Every bucket is written (0 or 1) so each series exposes its full, cumulative set.
        yield series, f"{series}|le={bound:g}", 1 if value <= bound else 0
    yield series, f"{series}|le=+Inf", 1
    yield series, f"{series}|sum", value
    yield series, f"{series}|count", 1


def metrics_queue(
    pipe: redis.client.Pipeline,
    observations: Iterable[tuple[CompiledMetric, tuple[str, ...], float]],
) -> int:
    """Queue a batch's observations on ``pipe`` (the caller executes it); return how many
    commands were queued."""
    per_metric: dict[CompiledMetric, list] = defaultdict(list)
    for metric, labels, value in observations:
        for series, field, amount in _fields(metric, labels, value):
            per_metric[metric].extend((series, field, amount))
    script = _record_script() if per_metric else None
    for metric, args in per_metric.items():
        folded = _series_key([OTHER] * len(metric.labels))
        definition = {
            "kind": metric.kind,
            "help": metric.help,
            "labels": metric.label_names,
            "buckets": metric.buckets,
        }
        pipe.hset(f"{PREFIX}defs", metric.name, json.dumps(definition))
        script(
            keys=[
                f"{PREFIX}{metric.name}",
                f"{PREFIX}{metric.name}:folded",
                f"{PREFIX}{metric.name}:series",
            ],
            args=[metric.max_series, *args, folded],
            client=pipe,
        )
    return 2 * len(per_metric)


class TelemetryMetricsCollector(Collector):
    """Renders the Redis-held aggregates in Prometheus exposition."""

    def collect(self) -> Iterator[Metric]:
        try:
            client = redis_client()
            definitions = client.hgetall(f"{PREFIX}defs")
            for raw_name, raw_definition in sorted(definitions.items()):
                name = raw_name.decode()
                definition = json.loads(raw_definition)
                data = client.hgetall(f"{PREFIX}{name}")
                folded = int(client.get(f"{PREFIX}{name}:folded") or 0)
                yield _family(name, definition, data)
                folded_family = Metric(
                    f"{name}_folded_series",
                    f"Observations folded into 'other' because {name} hit its series limit.",
                    "counter",
                )
                folded_family.add_sample(f"{name}_folded_series_total", {}, folded)
                yield folded_family
        except redis.RedisError as exc:
            logger.warning("telemetry metrics unavailable (%s)", type(exc).__name__)


class BareCounter(Metric):
    """A counter whose samples carry exactly its name, without ``_total``.

    Rules reference such names (``openagents_sync_client_telemetry_event_count``), but
    prometheus_client prints a counter family's TYPE line as ``<name>_total``. The family is
    therefore built ``unknown``, and ``/metrics`` (telemetry_platform.metrics) writes its TYPE
    line as ``counter``, which the text format 0.0.4 allows for any name.
    """

    def __init__(self, name: str, documentation: str) -> None:
        super().__init__(name, documentation, "unknown")


def counter_family(name: str, documentation: str) -> Metric:
    """Return the family for a counter whose samples are named exactly ``name``."""
    if name.endswith("_total"):
        # prometheus_client names a counter family without the suffix and adds it back.
        return Metric(name.removesuffix("_total"), documentation, "counter")
    return BareCounter(name, documentation)


def _family(name: str, definition: dict, data: dict[bytes, bytes]) -> Metric:
    label_names = definition["labels"]
    kind = definition["kind"]
    if kind == "counter":
        family = counter_family(name, definition["help"])
    else:
        family = Metric(name, definition["help"], kind)
    for raw_field, raw_value in sorted(data.items()):
        series, _, part = raw_field.decode().rpartition("|")
        labels = dict(zip(label_names, json.loads(series), strict=True))
        value = float(raw_value)
        if part == "c":
            family.add_sample(name, labels, value)
        elif part.startswith("le="):
            family.add_sample(f"{name}_bucket", {**labels, "le": part[3:]}, value)
        else:
            family.add_sample(f"{name}_{part}", labels, value)
    return family
