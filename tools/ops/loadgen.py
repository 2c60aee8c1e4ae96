"""A bounded, open-model HTTP load generator (asyncio + httpx) and the threshold arithmetic k6 uses.

Open model: request *i* is due at ``i / rate`` seconds whatever happened to the earlier ones, as k6's
constant-arrival-rate executor does, so a slow server shows as latency (and as arrivals dropped at the
concurrency cap, k6's ``dropped_iterations``) rather than as a politely lower load. Hard caps bound every
run whatever the scenario asks: concurrent requests in flight, requests sent, and seconds of arrivals.

Percentiles are k6's (metrics/sink.go ``TrendSink.P`` at v2.2.0: linear interpolation between the closest
ranks), so a local figure and an in-cluster figure mean the same thing.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import httpx

from tools.ops.results import Check


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` as k6 computes a trend's ``p(q)``; 0 for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100, not {q}")
    ordered = sorted(values)
    if not ordered:
        return 0.0
    if len(ordered) == 1:
        return float(ordered[0])
    i = q / 100 * (len(ordered) - 1)
    low, high = ordered[math.floor(i)], ordered[math.ceil(i)]
    return low + (high - low) * (i - math.floor(i))


@dataclass(frozen=True)
class Bounds:
    """What no run may exceed, whatever its scenario's rate and duration."""

    max_concurrency: int = 32
    max_requests: int = 2000
    max_seconds: float = 20.0
    request_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.max_requests < 1 or self.max_seconds <= 0 or self.request_timeout_s <= 0:
            raise ValueError(f"load generator bounds must be positive: {self}")


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunStats:
    """What one run observed. ``error_rate`` is k6's ``http_req_failed``: responses >= 400 and requests without a
    response, over requests sent; arrivals dropped at the concurrency cap are counted apart (never sent)."""

    target_rate: float
    duration_s: float
    sent: int
    failed: int
    dropped: int
    max_in_flight: int
    latencies_ms: tuple[float, ...]
    statuses: Mapping[int, int]

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.failed / self.sent if self.sent else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


async def run(client: httpx.AsyncClient, request: Request, rate: float, duration_s: float, bounds: Bounds) -> RunStats:
    """Send ``request`` at ``rate`` per second for ``duration_s`` (both cut by ``bounds``) and measure each answer."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError(f"rate and duration must be positive (rate {rate}, duration {duration_s})")
    window = min(duration_s, bounds.max_seconds)
    arrivals = min(bounds.max_requests, max(1, math.floor(rate * window)))
    in_flight = 0
    most = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    failed = dropped = 0
    tasks: set[asyncio.Task] = set()

    async def one() -> None:
        nonlocal in_flight, failed
        started = time.perf_counter()
        try:
            answer = await client.request(request.method, request.url, content=request.body, headers=dict(request.headers),
                                          timeout=bounds.request_timeout_s)
            status = answer.status_code
        except httpx.HTTPError:
            status = 0
        finally:
            in_flight -= 1
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 0 or status >= 400:
            failed += 1

    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(arrivals):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= bounds.max_concurrency:
            dropped += 1
            continue
        in_flight += 1
        most = max(most, in_flight)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(set(tasks))
    elapsed = max(loop.time() - start, arrivals / rate)
    return RunStats(target_rate=rate, duration_s=elapsed, sent=len(latencies), failed=failed, dropped=dropped,
                    max_in_flight=most, latencies_ms=tuple(latencies), statuses=dict(sorted(statuses.items())))


def slo_checks(name: str, p95_ms: float, p99_ms: float, error_rate: float, slo) -> list[Check]:
    """The scenario's three thresholds against what was observed, named as k6 spells them."""
    return [
        Check(f"{name} http_req_duration p(95)", p95_ms < slo.p95_ms, f"{p95_ms:.1f}ms", f"p(95)<{slo.p95_ms:g}ms"),
        Check(f"{name} http_req_duration p(99)", p99_ms < slo.p99_ms, f"{p99_ms:.1f}ms", f"p(99)<{slo.p99_ms:g}ms"),
        Check(f"{name} http_req_failed", error_rate < slo.error_rate, f"rate={error_rate:.4f}", f"rate<{slo.error_rate:g}"),
    ]
