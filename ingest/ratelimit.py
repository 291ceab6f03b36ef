"""Per-key token buckets in Redis: one atomic Lua call per request, shared by every worker."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import redis

from telemetry_platform.redis_client import redis_client

logger = logging.getLogger(__name__)

# KEYS: buckets; ARGV: now (s, float), then rate (tokens/s), burst, cost per bucket.
# Either every bucket has its cost and all are charged, or none is.
# Returns {allowed (0/1), seconds until every cost is available (string, float), the index
# (1-based) of the first bucket that was short, or 0}.
BUCKET_SCRIPT = """
local now = tonumber(ARGV[1])
local tokens, short, wait = {}, 0, 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local held = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  held = math.min(burst, held + math.max(0, now - at) * rate)
  tokens[i] = held
  if cost > held then
    if short == 0 then short = i end
    wait = math.max(wait, (math.min(cost, burst) - held) / rate)
  end
end
for i = 1, #KEYS do
  local rate = tonumber(ARGV[3 * i - 1])
  local burst = tonumber(ARGV[3 * i])
  local left = tokens[i]
  if short == 0 then left = left - tonumber(ARGV[3 * i + 1]) end
  redis.call('HSET', KEYS[i], 'tokens', left, 'at', now)
  redis.call('EXPIRE', KEYS[i], math.ceil(burst / rate) + 60)
end
if short == 0 then return {1, '0', 0} end
return {0, tostring(wait), short}
"""


@dataclass(frozen=True)
class Bucket:
    """One token bucket to take from: its name, refill rate, size and this request's cost."""

    name: str
    rate: float
    burst: float
    cost: float


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int = 0
    short: str = ""  # the name of the bucket that refused


@lru_cache(maxsize=1)
def _script() -> redis.commands.core.Script:
    return redis_client().register_script(BUCKET_SCRIPT)


def rate_limit_take(*, bucket: str, cost: int, rate: float, burst: float) -> RateDecision:
    """Take ``cost`` tokens from ``bucket``; refuse with the seconds to wait when short."""
    return rate_limits_take([Bucket(bucket, rate, burst, cost)])


def rate_limits_take(buckets: list[Bucket]) -> RateDecision:
    """Take each bucket's cost from it, all or nothing, in one Redis round trip.

    A bucket with a rate of 0 is off. A cost larger than the burst is allowed once the
    bucket is full, so big batches are throttled, not refused forever. If Redis cannot
    be reached the request is let through (logged): losing telemetry is worse than a
    moment without limits.
    """
    active = [bucket for bucket in buckets if bucket.rate > 0]
    if not active:
        return RateDecision(True)
    args: list[object] = [f"{time.time():.6f}"]
    for bucket in active:
        args.extend((bucket.rate, bucket.burst, bucket.cost))
    try:
        allowed, wait, short = _script()(
            keys=[f"tgp:ratelimit:{bucket.name}" for bucket in active], args=args
        )
    except redis.RedisError as exc:
        logger.warning("rate limiter unavailable (%s); request allowed", type(exc).__name__)
        return RateDecision(True)
    if int(allowed) == 1:
        return RateDecision(True)
    return RateDecision(
        False,
        retry_after=max(1, math.ceil(float(wait))),
        short=active[int(short) - 1].name,
    )


def once_per(key: str, seconds: int) -> bool:
    """Return True the first time ``key`` is seen within ``seconds`` (False if Redis fails)."""
    try:
        return bool(redis_client().set(f"tgp:once:{key}", 1, nx=True, ex=seconds))
    except redis.RedisError:
        return False
