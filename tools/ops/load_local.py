"""``make load-local [SCENARIO=] [SCALE=]``: the load-test scenarios against the gateway on 127.0.0.1.

The gateway runs as its real process (``python -m soma_gateway``, uvicorn) with authorization on, as
``soma_gateway.bench`` starts it: identity's JWKS, an OpenFGA Check stand-in that allows exactly the checks the
scenarios make (read from the gateway's own route table), a real redis-server for the rate limiter (set far
above the load), the real tool service (``python -m soma_tools``, asking the same OpenFGA stand-in; no tool modules
registered, so its listings are empty) and an echo stand-in for the orchestrator and the memory gateway, which need
PostgreSQL and Qdrant with an embedding model. Each scenario of
components/ops/scenarios.yaml is then sent at its arrival rate times ``--scale`` by the bounded open-model
generator (tools/ops/loadgen.py) and judged against its SLOs.

What the figures include: the gateway's whole request path (JWT verification, a Redis script, an OpenFGA
Check over HTTP, the audit event, forwarding) on this machine, and for the tool routes the tool service's own
(caller headers, registry, MCP server). What they do not: the orchestrator's and memory gateway's work (the echo
answers at once), tools to list or call, a real OpenFGA's evaluation, network hops, the full rate for the full
duration (bounded by ``--max-seconds``, ``--max-requests``, ``--max-concurrency``). A stage result is written
only with ``--record STACK``: a local run is evidence about the code, not about a stack's cluster.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import httpx

from components.ops import scenarios as scenario_file
from components.ops.scenarios import Scenario, ScenarioError
from tools.ops.loadgen import Bounds, Request, RunStats, run, slo_checks
from tools.ops.results import Check, StageResult

ROOT = Path(__file__).resolve().parents[2]
ISSUER, AUDIENCE = "https://identity.load.soma.local", "soma-api"
STORE_ID, MODEL_ID = "01JH6Q8ZK3P5R7T9V2X4Y6A8C0", "01JH6Q9B1D3F5H7K9M2N4P6R8S"
USER, TENANT = "load-tester", "load-test"
DEFAULT_SCALE = 0.25


def decisions_for(scenarios: tuple[Scenario, ...]) -> dict[tuple[str, str, str], bool]:
    """The OpenFGA checks the gateway will ask for these scenarios, all allowed: each scenario's request is
    matched against the gateway's route table, which must give the route the scenario names."""
    from soma_gateway.routes import DEFAULT_ROUTES

    decisions = {}
    for scenario in scenarios:
        matched = DEFAULT_ROUTES.match(scenario.method, scenario.path)
        if matched is None or matched.route.name != scenario.route:
            found = matched.route.name if matched else "no route"
            raise ScenarioError(f"scenario {scenario.name}: {scenario.method} {scenario.path} is {found} in the gateway's "
                                f"route table, not {scenario.route}")
        decisions[(f"user:{USER}", matched.route.relation, matched.fga_object_for(TENANT))] = True
    return decisions


@dataclass(frozen=True)
class LocalGateway:
    url: str
    token: str


@contextmanager
def local_gateway(scenarios: tuple[Scenario, ...]) -> Iterator[LocalGateway]:
    """The gateway process and its stand-ins on 127.0.0.1, stopped on exit."""
    from soma_gateway import standins
    from soma_gateway.bench import wait_ready

    redis_binary = standins.redis_server_binary()
    if redis_binary is None:
        raise SystemExit("no redis-server: run `make redis` (tools/fetch_redis.sh) first; `make load-local` does")
    with tempfile.TemporaryDirectory(prefix="load-local-") as work:
        identity = standins.IdentityKeys(ISSUER, AUDIENCE)
        identity.add_key("load")
        fga = standins.OpenFgaStandIn(STORE_ID, MODEL_ID, decisions_for(scenarios))
        upstream = standins.EchoUpstream()
        redis = standins.RedisServer(redis_binary, work)
        Path(work, "store-id").write_text(STORE_ID)
        Path(work, "model-id").write_text(MODEL_ID)
        port = standins.free_port()
        servers = [identity.start(), fga.start(), upstream.start(), redis.start()]
        env = {**base_env(work), "SOMA_HTTP_PORT": str(port), "SOMA_JWT_ISSUER": ISSUER, "SOMA_JWT_AUDIENCE": AUDIENCE,
               "SOMA_OPENFGA_STORE_ID_FILE": str(Path(work, "store-id")), "SOMA_OPENFGA_MODEL_ID_FILE": str(Path(work, "model-id")),
               "SOMA_RATE_LIMIT": json.dumps({"rate": 1_000_000, "burst": 1_000_000}),
               "SOMA_JWKS_URL": identity.url + "/.well-known/jwks.json", "SOMA_OPENFGA_API_URL": fga.url,
               "SOMA_REDIS_URL": redis.url}
        processes: list[subprocess.Popen] = []
        try:
            tools_port = standins.free_port()
            tools = start(["soma_tools"], {**base_env(work), "SOMA_HTTP_PORT": str(tools_port), "SOMA_OPENFGA_API_URL": fga.url,
                                           "SOMA_OPENFGA_STORE_ID_FILE": env["SOMA_OPENFGA_STORE_ID_FILE"],
                                           "SOMA_OPENFGA_MODEL_ID_FILE": env["SOMA_OPENFGA_MODEL_ID_FILE"]}, processes)
            wait_ready(f"http://127.0.0.1:{tools_port}", tools)
            env["SOMA_UPSTREAMS"] = json.dumps({"orchestrator": upstream.url, "tools": f"http://127.0.0.1:{tools_port}",
                                                "memory": upstream.url})
            gateway = start(["soma_gateway"], env, processes)
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, gateway)
            yield LocalGateway(url, identity.token("load", sub=USER, tenant=TENANT, lifetime=3600))
        finally:
            for process in processes:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            for server in servers:
                server.stop()


def base_env(work: str) -> dict[str, str]:
    """A service process's environment: this one's without ``SOMA_*``, the apps importable, on 127.0.0.1, audit to the log."""
    from soma_gateway.bench import source_path

    apps = [str(src) for src in sorted((ROOT / "apps").glob("*/src"))]   # as tools/apps_path.sh
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SOMA_")}, "PYTHONPATH": os.pathsep.join([*apps, source_path()]),
            "SOMA_HTTP_HOST": "127.0.0.1", "SOMA_SECRETS_DIR": work, "SOMA_AUDIT_SINK": "log"}


def start(module: list[str], env: dict[str, str], started: list[subprocess.Popen]) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", *module], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started.append(process)
    return process


def request_for(scenario: Scenario, base_url: str, token: str) -> Request:
    headers = {**scenario.headers, "authorization": f"Bearer {token}"}
    if scenario.body is not None:
        headers["content-type"] = "application/json"
    return Request(scenario.method, base_url + scenario.path, scenario.body_bytes(), headers)


async def run_all(base_url: str, token: str, scenarios: tuple[Scenario, ...], scale: float, bounds: Bounds) -> list[tuple[Scenario, RunStats]]:
    """Each scenario in turn (never two at once: each one's figures are its own)."""
    limits = httpx.Limits(max_connections=bounds.max_concurrency, max_keepalive_connections=bounds.max_concurrency)
    measured = []
    async with httpx.AsyncClient(limits=limits) as client:
        for scenario in scenarios:
            target = scenario.scaled(scale)
            stats = await run(client, request_for(target, base_url, token), target.rate, target.duration_s, bounds)
            measured.append((scenario, stats))
    return measured


def checks_of(scenario: Scenario, stats: RunStats) -> list[Check]:
    return slo_checks(scenario.name, stats.p(95), stats.p(99), stats.error_rate, scenario.slo)


def report(measured: list[tuple[Scenario, RunStats]], scale: float, bounds: Bounds, out=None) -> bool:
    out = out or sys.stdout
    print(f"local load: gateway on 127.0.0.1 (authorization on; tool service real, orchestrator and memory echoed), rates x{scale:g}, "
          f"at most {bounds.max_seconds:g} s / {bounds.max_requests} requests / {bounds.max_concurrency} in flight per scenario",
          file=out)
    passed = True
    for scenario, stats in measured:
        print(f"{scenario.name}: {scenario.method} {scenario.path}", file=out)
        print(f"  rate      {stats.achieved_rate:8.2f}/s achieved of {stats.target_rate:.2f}/s target "
              f"({stats.sent} sent in {stats.duration_s:.1f} s, {stats.dropped} dropped at the concurrency cap)", file=out)
        print(f"  latency   p50 {stats.p(50):.1f} ms  p95 {stats.p(95):.1f} ms  p99 {stats.p(99):.1f} ms", file=out)
        print(f"  errors    {stats.error_rate:.2%} ({stats.failed} of {stats.sent}; statuses {dict(stats.statuses)})", file=out)
        for check in checks_of(scenario, stats):
            passed &= check.passed
            print(f"  {'PASS' if check.passed else 'FAIL'}      {check.name}: {check.observed} (threshold {check.threshold})", file=out)
    print(f"load-local: {'all thresholds held' if passed else 'a threshold was missed'}", file=out)
    return passed


def stage_result(stack: str, release: str, measured: list[tuple[Scenario, RunStats]], finished: datetime) -> StageResult:
    checks = tuple(c for scenario, stats in measured for c in checks_of(scenario, stats))
    return StageResult(kind="load", stack=stack, release=release,
                       finished_at=finished.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                       passed=all(c.passed for c in checks), source="local load generator", checks=checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", default=[], help="a scenario name (repeatable; default: all)")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help=f"rate factor (default {DEFAULT_SCALE})")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="seconds of arrivals per scenario at most")
    parser.add_argument("--max-requests", type=int, default=1000, help="requests per scenario at most")
    parser.add_argument("--max-concurrency", type=int, default=32, help="requests in flight at most")
    parser.add_argument("--record", metavar="STACK", help="also write promotions/results/STACK/load.json (never by default)")
    args = parser.parse_args(argv)
    try:
        if args.scale <= 0:
            raise ScenarioError(f"--scale must be positive, not {args.scale}")
        chosen = scenario_file.select(scenario_file.load(), [n for item in args.scenario for n in item.split(",") if n])
        bounds = Bounds(max_concurrency=args.max_concurrency, max_requests=args.max_requests, max_seconds=args.max_seconds)
        with local_gateway(chosen) as gateway:
            measured = asyncio.run(run_all(gateway.url, gateway.token, chosen, args.scale, bounds))
    except (ScenarioError, ValueError) as error:
        print(f"load-local: {error}", file=sys.stderr)
        return 2
    passed = report(measured, args.scale, bounds)
    if args.record:
        from components import catalog
        from tools.ops import results
        from tools.ops.release import release_digests, release_id

        result = stage_result(args.record, release_id(release_digests(catalog.load())), measured, datetime.now(timezone.utc))
        print(f"recorded {results.write(Path.cwd(), result)} ({'green' if result.passed else 'red'})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
