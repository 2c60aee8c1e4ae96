"""Per-tenant rate limits against a real redis-server (Debian's, started by the fixture): the burst passes,
the next request is refused with the time until it would pass, tenants do not share a budget, concurrent
requests never overspend (the script is atomic), and Redis going away refuses rather than serves."""
from __future__ import annotations

import asyncio
import time

import pytest
from soma_gateway.ratelimit import Limit, RateLimitUnavailable, TenantRateLimiter, redis_client


def run(redis_server, work, *, default=Limit(rate=5, burst=3), per_tenant=None, timeout=1.0):
    async def main():
        client = redis_client(redis_server.url, max_connections=16, timeout=timeout)
        try:
            return await work(TenantRateLimiter(client, default, per_tenant, prefix=f"t{time.monotonic_ns()}:"))
        finally:
            await client.aclose()
    return asyncio.run(main())


def test_the_burst_passes_then_the_next_request_waits_one_interval(redis_server):
    async def work(limiter):
        verdicts = [await limiter.take("acme") for _ in range(4)]
        return verdicts
    verdicts = run(redis_server, work)
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert 100 < verdicts[3].retry_after_ms <= 200 and verdicts[3].retry_after_seconds == 1


def test_the_budget_refills_at_the_sustained_rate(redis_server):
    async def work(limiter):
        first = [(await limiter.take("acme")).allowed for _ in range(2)]
        await asyncio.sleep(0.12)   # rate 10/s: one more request after 100 ms
        second = [(await limiter.take("acme")).allowed for _ in range(2)]
        return first, second
    assert run(redis_server, work, default=Limit(rate=10, burst=2)) == ([True, True], [True, False])


def test_tenants_have_their_own_budgets_and_overrides(redis_server):
    async def work(limiter):
        acme = [(await limiter.take("acme")).allowed for _ in range(3)]
        globex = [(await limiter.take("globex")).allowed for _ in range(3)]
        return acme, globex
    acme, globex = run(redis_server, work, default=Limit(rate=1, burst=1), per_tenant={"globex": Limit(rate=1, burst=3)})
    assert acme == [True, False, False] and globex == [True, True, True]


def test_concurrent_requests_never_spend_more_than_the_burst(redis_server):
    async def work(limiter):
        verdicts = await asyncio.gather(*(limiter.take("acme") for _ in range(200)))
        return sum(v.allowed for v in verdicts)
    assert run(redis_server, work, default=Limit(rate=0.01, burst=25)) == 25


def test_redis_unreachable_refuses(redis_server):
    redis_server.stop()
    try:
        async def work(limiter):
            with pytest.raises(RateLimitUnavailable):
                await limiter.take("acme")
        run(redis_server, work, timeout=0.5)
    finally:
        redis_server.start()

    async def again(limiter):
        return (await limiter.take("acme")).allowed
    assert run(redis_server, again) is True


def test_a_limit_must_make_sense():
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        Limit(rate=0, burst=1)
