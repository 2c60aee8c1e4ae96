"""Per-tenant rate limits in Redis, one atomic script per request.

The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp): a tenant may
send ``burst`` requests at once and ``rate`` per second after that. The whole decision (read, compare,
write) is one Lua script, so replicas of the gateway sharing one Redis never both spend the last token, and
the time is Redis' own (``TIME``), so gateway clocks do not matter. A refusal says exactly when the next
request will pass (Retry-After). Redis unreachable is ``RateLimitUnavailable``: the gateway then refuses
(503) rather than serve unmetered.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import redis.asyncio as aioredis
from redis.exceptions import RedisError

# KEYS[1] the tenant's key; ARGV[1] ms between requests at the sustained rate; ARGV[2] burst (requests).
# Returns {1, 0} when allowed, {0, ms until the next request would be allowed} when not.
GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if allow_at > now then
  return {0, math.ceil(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
"""


class RateLimitUnavailable(Exception):
    """Redis cannot be asked: no request is served unmetered."""


@dataclass(frozen=True)
class Limit:
    rate: float   # sustained requests per second
    burst: int    # requests allowed at once

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(f"a rate limit needs rate > 0 and burst >= 1, got rate={self.rate} burst={self.burst}")


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_ms: int = 0

    @property
    def retry_after_seconds(self) -> int:
        """Retry-After takes whole seconds: rounded up, so a client that obeys it is not refused again."""
        return max(1, math.ceil(self.retry_after_ms / 1000))


def redis_client(url: str, *, password: str | None = None, max_connections: int = 64, timeout: float = 0.5) -> aioredis.Redis:
    """A client whose pool makes a request wait (up to ``timeout``) for a free connection under load instead
    of failing at once; every socket operation is bounded by ``timeout`` too, so a hung Redis is a 503
    within that time, not a stuck request."""
    pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout,
                                                    socket_timeout=timeout, socket_connect_timeout=timeout, password=password)
    return aioredis.Redis(connection_pool=pool)


class TenantRateLimiter:
    def __init__(self, client: aioredis.Redis, default: Limit, per_tenant: Mapping[str, Limit] | None = None,
                 prefix: str = "soma:gateway:rl:"):
        self.client = client
        self.default = default
        self.per_tenant = dict(per_tenant or {})
        self.prefix = prefix
        self._script = client.register_script(GCRA)

    def limit_for(self, tenant: str) -> Limit:
        return self.per_tenant.get(tenant, self.default)

    async def take(self, tenant: str) -> Verdict:
        limit = self.limit_for(tenant)
        interval_ms = 1000.0 / limit.rate
        try:
            allowed, wait_ms = await self._script(keys=[self.prefix + tenant], args=[interval_ms, limit.burst])
        except (RedisError, OSError) as exc:
            raise RateLimitUnavailable(f"Redis unreachable: {type(exc).__name__}") from None
        return Verdict(bool(allowed), int(wait_ms))
