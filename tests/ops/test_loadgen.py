"""The local load generator: k6's percentiles, an open-model run that never exceeds its caps, and a failing
endpoint that turns the error-rate threshold red. Requests go to in-process httpx transports (no sockets)."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from components.ops.scenarios import Slo
from tools.ops.loadgen import Bounds, Request, percentile, run, slo_checks

SLO = Slo(p95_ms=300, p99_ms=800, error_rate=0.01)


def test_percentiles_are_k6s_on_k6s_own_sample():
    # grafana/k6 v2.2.0 internal/js/summary_test.go: a trend of 10, 15, 20 has p(90)=19, p(95)=19.5, p(99)=19.9, med 15
    sample = [20.0, 10.0, 15.0]
    assert [percentile(sample, q) for q in (90, 95, 99, 50)] == pytest.approx([19, 19.5, 19.9, 15])


def test_percentiles_on_one_hundred_known_values():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert (percentile(values, 0), percentile(values, 100), percentile([], 95), percentile([7.0], 99)) == (1, 100, 0, 7)
    with pytest.raises(ValueError):
        percentile(values, 101)


def measure(handler, rate: float, duration: float, bounds: Bounds):
    async def go():
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await run(client, Request("POST", "http://gateway.test/v1/x", b"{}"), rate, duration, bounds)
    return asyncio.run(go())


def test_a_slow_server_never_sees_more_than_the_concurrency_cap():
    seen = {"now": 0, "most": 0}

    async def slow(request):
        seen["now"] += 1
        seen["most"] = max(seen["most"], seen["now"])
        await asyncio.sleep(0.2)
        seen["now"] -= 1
        return httpx.Response(200)

    stats = measure(slow, rate=200, duration=0.5, bounds=Bounds(max_concurrency=5, max_requests=1000, max_seconds=5))
    assert seen["most"] <= 5 and stats.max_in_flight <= 5
    assert stats.dropped > 0 and stats.sent + stats.dropped == 100   # open model: arrivals were due, not sent
    assert stats.error_rate == 0


def test_requests_and_seconds_are_capped_whatever_the_scenario_asks():
    count = {"n": 0}

    async def quick(request):
        count["n"] += 1
        return httpx.Response(200)

    stats = measure(quick, rate=1000, duration=3600, bounds=Bounds(max_concurrency=50, max_requests=40, max_seconds=5))
    assert count["n"] == stats.sent == 40
    stats = measure(quick, rate=100, duration=3600, bounds=Bounds(max_concurrency=50, max_requests=10_000, max_seconds=0.3))
    assert stats.sent == 30 and stats.duration_s < 2
    assert stats.achieved_rate == pytest.approx(100, rel=0.5)


def test_a_failing_endpoint_turns_the_error_rate_red():
    calls = {"n": 0}

    async def flaky(request):
        calls["n"] += 1
        if calls["n"] % 4 == 0:
            raise httpx.ConnectError("refused")
        return httpx.Response(503 if calls["n"] % 2 else 200)

    stats = measure(flaky, rate=200, duration=0.2, bounds=Bounds())
    assert stats.sent == 40 and stats.failed == 30 and stats.statuses == {0: 10, 200: 10, 503: 20}
    p95, p99, errors = slo_checks("x", stats.p(95), stats.p(99), stats.error_rate, SLO)
    assert p95.passed and p99.passed and not errors.passed
    assert errors.observed == "rate=0.7500" and errors.threshold == "rate<0.01"


def test_latency_over_the_slo_fails_its_threshold():
    p95, p99, errors = slo_checks("x", 310.0, 700.0, 0.0, SLO)
    assert (p95.passed, p99.passed, errors.passed) == (False, True, True)
    assert p95.name == "x http_req_duration p(95)" and p95.observed == "310.0ms" and p95.threshold == "p(95)<300ms"


def test_bounds_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        Bounds(max_concurrency=0)
