"""Liveness (``/healthz``) and readiness (``/readyz``) that mean something.

* ``/healthz`` answers 200 while the event loop runs: a restart would not fix anything else.
* ``/readyz`` runs every registered dependency check (database reachable, Vault key readable, ...) in
  parallel, each bounded by ``readiness_timeout_seconds``, and answers 503 naming the failing ones — so
  Kubernetes stops routing to a pod whose dependencies are gone, instead of the pod returning 500s. It is
  503 as well before start-up finished and once shutdown began (draining).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

CheckFunction = Callable[[], Any] | Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class ReadinessCheck:
    """``probe`` raises (or returns ``False``) when the dependency ``name`` is not usable. Sync or async."""

    name: str
    probe: CheckFunction


class ServiceState:
    """Lifecycle flags that /readyz reports: starting → ready → draining."""

    def __init__(self) -> None:
        self.started = False
        self.draining = False
        self.in_flight = 0
        self.checks: list[ReadinessCheck] = []

    def add_check(self, check: ReadinessCheck) -> None:
        if any(existing.name == check.name for existing in self.checks):
            raise ValueError(f"readiness check {check.name!r} registered twice")
        self.checks.append(check)


async def _run_check(check: ReadinessCheck, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        if inspect.iscoroutinefunction(check.probe):
            result = await asyncio.wait_for(check.probe(), timeout)
        else:
            result = await asyncio.wait_for(run_in_threadpool(check.probe), timeout)
        ok, detail = (result is not False), ("returned False" if result is False else None)
    except asyncio.TimeoutError:
        ok, detail = False, f"no answer within {timeout:g}s"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported by type and message
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    outcome: dict[str, Any] = {"name": check.name, "ok": ok, "seconds": round(time.perf_counter() - started, 4)}
    if detail:
        outcome["error"] = detail
    return outcome


async def readiness(state: ServiceState, timeout: float) -> tuple[bool, dict[str, Any]]:
    if not state.started:
        return False, {"status": "starting", "checks": []}
    if state.draining:
        return False, {"status": "draining", "checks": []}
    results = await asyncio.gather(*(_run_check(check, timeout) for check in state.checks))
    ready = all(result["ok"] for result in results)
    return ready, {"status": "ready" if ready else "not_ready", "checks": list(results)}
