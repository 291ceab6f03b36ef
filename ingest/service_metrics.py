"""Service counters from ``service_metric`` events, kept in Redis and exposed on /metrics.

Names are exposed with dots as underscores (``auth.verify.completed`` ->
``auth_verify_completed``), labelled by ``service``, ``instance`` and the event's labels.
Semantics by kind (and temporality):

* counter, delta (or unspecified): the value is an increment and is added;
* counter, cumulative: the value is the service's own running total (a snapshot); the
  increase since that series' previous snapshot is added, a lower value counts as a restart
  (the new value is added), and a snapshot older than the last one seen is ignored;
* gauge: the newest value per series wins;
* histogram sample: exposed as a summary (``_count`` and ``_sum``).

Like the telemetry aggregates these are derived data in Redis (shared by every worker,
surviving deploys); the events themselves are stored and kept under the service_metric
retention. Guard rails: label sets beyond TELEMETRY_SERVICE_METRIC_MAX_SERIES per name fold
into one ``{folded="true"}`` series (increments are added there; new snapshot and gauge
series are dropped) and are counted in ``<name>_folded_series_total``; names beyond
TELEMETRY_SERVICE_METRIC_MAX_NAMES are dropped; a label whose value redaction changed is
left out (a hash must not become a label); names in the platform's own ``telemetry_``
namespace or the catalogue's are never exposed.
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

import redis
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from telemetry_platform.conf import telemetry_settings
from telemetry_platform.redis_client import redis_client

from .telemetry_metrics import PREFIX as AGGREGATES_PREFIX
from .telemetry_metrics import counter_family

logger = logging.getLogger(__name__)

PREFIX = "tgp:svc:"
DEFS_KEY = f"{PREFIX}defs"
SERVICE_METRIC_SCHEMAS = frozenset({"telemetry.service_metric.v1"})
RESERVED_PREFIXES = ("telemetry_",)
FOLDED_SERIES = json.dumps([["folded", "true"]], separators=(",", ":"))
NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = frozenset({"service", "instance", "folded", "le", "quantile"})
# What redaction leaves in a value: a placeholder ("[redacted]", "[email]") or a keyed hash.
REDACTION_MARK_RE = re.compile(r"\[[a-z_]+\]|\b[a-z][a-z0-9]*:[0-9a-f]{32,}")

KINDS = {
    "KIND_COUNTER": "counter",
    "KIND_GAUGE": "gauge",
    "KIND_HISTOGRAM_SAMPLE": "summary",
}

# KEYS: defs, data, state, series set, folded counter. ARGV: name, kind, max_series,
# max_names, ttl seconds, then quadruples (series, mode, value, timestamp).
# mode: inc (add), cum (running total), set (gauge), obs (summary sample).
RECORD_SCRIPT = """
local name, kind = ARGV[1], ARGV[2]
local max_series, max_names, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local known = redis.call('HGET', KEYS[1], name)
if not known then
  if redis.call('HLEN', KEYS[1]) >= max_names then return -1 end
  redis.call('HSET', KEYS[1], name, kind)
elseif known ~= kind then
  return -2
end
local folded_series = ARGV[6]
for i = 7, #ARGV - 3, 4 do
  local series, mode = ARGV[i], ARGV[i + 1]
  local value, ts = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local keep = true
  if redis.call('SISMEMBER', KEYS[4], series) == 0 then
    if redis.call('SCARD', KEYS[4]) >= max_series then
      redis.call('INCRBY', KEYS[5], 1)
      if mode == 'inc' or mode == 'obs' then series = folded_series else keep = false end
    else
      redis.call('SADD', KEYS[4], series)
    end
  end
  if keep then
    if mode == 'inc' then
      redis.call('HINCRBYFLOAT', KEYS[2], series, value)
    elseif mode == 'obs' then
      redis.call('HINCRBYFLOAT', KEYS[2], series .. '|sum', value)
      redis.call('HINCRBYFLOAT', KEYS[2], series .. '|count', 1)
    else
      local last_ts = tonumber(redis.call('HGET', KEYS[3], series .. '|t') or '-1')
      if ts >= last_ts then
        if mode == 'set' then
          redis.call('HSET', KEYS[2], series, value)
        elseif ts > last_ts then
          local last = tonumber(redis.call('HGET', KEYS[3], series .. '|v') or '0')
          local delta = value - last
          if delta < 0 then delta = value end
          redis.call('HINCRBYFLOAT', KEYS[2], series, delta)
          redis.call('HSET', KEYS[3], series .. '|v', value)
        end
        redis.call('HSET', KEYS[3], series .. '|t', ts)
      end
    end
  end
end
for k = 2, 5 do redis.call('EXPIRE', KEYS[k], ttl) end
redis.call('EXPIRE', KEYS[1], ttl)
return 1
"""


@lru_cache(maxsize=1)
def _record_script() -> redis.commands.core.Script:
    return redis_client().register_script(RECORD_SCRIPT)


def exposed_name(name: str) -> str:
    """The Prometheus name of a dotted service metric name, or "" if it cannot be one."""
    exposed = name.strip().replace(".", "_").replace("-", "_")
    if not NAME_RE.match(exposed) or exposed.startswith(RESERVED_PREFIXES):
        return ""
    return exposed


def _labels(payload: dict[str, Any], redacted: bool) -> list[list[str]]:
    labels = {}
    # A histogram's bucket counters (from OTLP) carry their bound as ``le``.
    bucket = str(payload.get("name", "")).endswith("_bucket")
    for key, value in (payload.get("labels") or {}).items():
        label = str(key).replace(".", "_").replace("-", "_")
        if (
            not LABEL_RE.match(label)
            or label.startswith("__")
            or (label in RESERVED_LABELS and not (bucket and label == "le"))
            or not isinstance(value, str)
            or (redacted and REDACTION_MARK_RE.search(f"{key} {value}"))
        ):
            continue
        labels[label] = value
    labels["service"] = str(payload.get("service", ""))
    labels["instance"] = str(payload.get("instance", ""))
    return [[key, labels[key]] for key in sorted(labels)]


def _mode(kind: str, temporality: str) -> str:
    if kind == "gauge":
        return "set"
    if kind == "summary":
        return "obs"
    return "cum" if temporality == "TEMPORALITY_CUMULATIVE" else "inc"


def service_observation(
    payload: dict[str, Any], redactions: Sequence[Sequence[str]], occurred_at_ms: int
) -> tuple[str, str, str, str, float, int] | None:
    """(name, kind, series, mode, value, timestamp ms) of one accepted event, or None."""
    kind = KINDS.get(str(payload.get("kind", "")))
    name = exposed_name(str(payload.get("name", "")))
    value = payload.get("value", 0.0)
    if kind is None or not name or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    mode = _mode(kind, str(payload.get("temporality", "")))
    if mode == "inc" and value < 0:
        return None  # a counter never goes down
    redacted = any(path == "labels" for path, *_ in redactions)
    series = json.dumps(_labels(payload, redacted), separators=(",", ":"))
    return name, kind, series, mode, float(value), occurred_at_ms


def service_metrics_queue(
    pipe: redis.client.Pipeline, events: Iterable[Any], *, ttl_seconds: int
) -> int:
    """Queue the accepted platform ``service_metric`` events of a batch on ``pipe`` (the
    caller executes it; ``service_metrics_outcomes`` reads the answers); return how many
    commands were queued. ``events`` are the pipeline's prepared events. Series nobody
    updates for ``ttl_seconds`` (the class retention) expire with their events.
    """
    per_metric: dict[tuple[str, str], list] = defaultdict(list)
    for event in events:
        if event.schema_name not in SERVICE_METRIC_SCHEMAS:
            continue
        observation = service_observation(
            event.payload, event.redactions, int(event.occurred_at.timestamp() * 1000)
        )
        if observation is None:
            continue
        name, kind, series, mode, value, stamp = observation
        per_metric[(name, kind)].extend((series, mode, repr(value), stamp))
    script = _record_script() if per_metric else None
    for (name, kind), args in per_metric.items():
        script(
            keys=[
                DEFS_KEY,
                f"{PREFIX}{name}",
                f"{PREFIX}{name}:state",
                f"{PREFIX}{name}:series",
                f"{PREFIX}{name}:folded",
            ],
            args=[
                name,
                kind,
                telemetry_settings.SERVICE_METRIC_MAX_SERIES,
                telemetry_settings.SERVICE_METRIC_MAX_NAMES,
                ttl_seconds,
                FOLDED_SERIES,
                *args,
            ],
            client=pipe,
        )
    return len(per_metric)


def service_metrics_outcomes(outcomes: list[Any]) -> None:
    """Log what the queued service metric updates refused (counts only, never values)."""
    over_limit, other_kind = outcomes.count(-1), outcomes.count(-2)
    if over_limit or other_kind:
        logger.warning(
            "service metrics dropped: %d over TELEMETRY_SERVICE_METRIC_MAX_NAMES, "
            "%d sent with another kind than first seen",
            over_limit,
            other_kind,
        )


def service_metric_names() -> dict[str, str]:
    """Exposed service metric names and their kind (for the conformance catalogue)."""
    try:
        return {
            name.decode(): kind.decode() for name, kind in redis_client().hgetall(DEFS_KEY).items()
        }
    except redis.RedisError:
        return {}


class ServiceMetricsCollector(Collector):
    """Renders the service counters held in Redis in Prometheus exposition."""

    def collect(self) -> Iterator[Metric]:
        try:
            client = redis_client()
            definitions = client.hgetall(DEFS_KEY)
            taken = set(client.hkeys(f"{AGGREGATES_PREFIX}defs"))  # the catalogue's
            for raw_name, raw_kind in sorted(definitions.items()):
                name, kind = raw_name.decode(), raw_kind.decode()
                if raw_name in taken or name.startswith(RESERVED_PREFIXES):
                    continue
                data = client.hgetall(f"{PREFIX}{name}")
                if not data:
                    client.hdel(DEFS_KEY, name)  # expired with its retention
                    continue
                yield _family(name, kind, data)
                folded = int(client.get(f"{PREFIX}{name}:folded") or 0)
                folded_family = Metric(
                    f"{name}_folded_series",
                    f"Label sets of {name} beyond the series limit.",
                    "counter",
                )
                folded_family.add_sample(f"{name}_folded_series_total", {}, folded)
                yield folded_family
        except redis.RedisError as exc:
            logger.warning("service metrics unavailable (%s)", type(exc).__name__)


def _family(name: str, kind: str, data: dict[bytes, bytes]) -> Metric:
    documentation = f"Service metric {name} (from service_metric events)"
    if kind == "counter":
        # As for the aggregates: samples carry exactly the name rules reference.
        family = counter_family(name, documentation)
    else:
        family = Metric(name, documentation, kind)
    for raw_field, raw_value in sorted(data.items()):
        field = raw_field.decode()
        suffix = ""
        if kind == "summary":
            field, _, part = field.rpartition("|")
            suffix = f"_{part}"
        labels = dict(json.loads(field))
        family.add_sample(f"{name}{suffix}", labels, float(raw_value))
    return family
