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

# KEYS[1] bucket; ARGV: rate (tokens/s), burst, cost, now (s, float).
# Returns {allowed (0/1), seconds until the cost is available (string, float)}.
BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if cost <= tokens then
  tokens = tokens - cost
  allowed = 1
else
  wait = (math.min(cost, burst) - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int = 0


@lru_cache(maxsize=1)
def _script() -> redis.commands.core.Script:
    return redis_client().register_script(BUCKET_SCRIPT)


def rate_limit_take(*, bucket: str, cost: int, rate: float, burst: float) -> RateDecision:
    """Take ``cost`` tokens from ``bucket``; refuse with the seconds to wait when short.

    A batch larger than the burst is allowed once the bucket is full, so big batches
    are throttled, not refused forever. If Redis cannot be reached the request is let
    through (logged): losing telemetry is worse than a moment without limits.
    """
    if rate <= 0:
        return RateDecision(True)
    try:
        allowed, wait = _script()(
            keys=[f"tgp:ratelimit:{bucket}"], args=[rate, burst, cost, f"{time.time():.6f}"]
        )
    except redis.RedisError as exc:
        logger.warning("rate limiter unavailable (%s); request allowed", type(exc).__name__)
        return RateDecision(True)
    if int(allowed) == 1:
        return RateDecision(True)
    return RateDecision(False, retry_after=max(1, math.ceil(float(wait))))


def once_per(key: str, seconds: int) -> bool:
    """Return True the first time ``key`` is seen within ``seconds`` (False if Redis fails)."""
    try:
        return bool(redis_client().set(f"tgp:once:{key}", 1, nx=True, ex=seconds))
    except redis.RedisError:
        return False
