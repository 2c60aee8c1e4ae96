"""``python -m soma_gateway.bench``: the latency the gateway adds to a request, on this machine.

Starts the gateway as its real process (``python -m soma_gateway``, uvicorn) with authorization on, in front
of a local echo upstream, with identity's JWKS, an OpenFGA Check stand-in (soma_gateway.standins) and a real
redis-server; then sends the same request alternately straight to the upstream and through the gateway
(one keep-alive connection each, sequential) and prints p50/p99 of both and the difference.

What the figure includes: JWT verification (RS256, cached key), one Redis script (rate limit), one OpenFGA
Check over HTTP to the stand-in, the audit event (log sink), forwarding over HTTP. What it does not: a real
OpenFGA server's evaluation time (the stand-in answers from a table: add your OpenFGA's check latency), a
Kafka producer, network hops between nodes. Not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from . import standins

ISSUER, AUDIENCE = "https://identity.bench.soma.local", "soma-api"
STORE_ID, MODEL_ID = "01JH6Q8ZK3P5R7T9V2X4Y6A8C0", "01JH6Q9B1D3F5H7K9M2N4P6R8S"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def source_path() -> str:
    """PYTHONPATH for the gateway process: the folders this process imports soma_gateway and soma_service from."""
    import soma_service

    folders = {str(Path(__file__).resolve().parents[1]), str(Path(soma_service.__file__).resolve().parents[1])}
    return os.pathsep.join(sorted(folders) + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the gateway did not become ready within 30 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per path (default 2000)")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)

    redis_binary = standins.redis_server_binary()
    if redis_binary is None:
        print("no redis-server: run `sh tools/fetch_redis.sh` first (make bench-gateway does)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as work:
        identity = standins.IdentityKeys(ISSUER, AUDIENCE)
        identity.add_key("bench")
        fga = standins.OpenFgaStandIn(STORE_ID, MODEL_ID, {("user:bob", "can_run", "workflow:acme-triage"): True})
        upstream = standins.EchoUpstream()
        redis = standins.RedisServer(redis_binary, work)
        Path(work, "store-id").write_text(STORE_ID)
        Path(work, "model-id").write_text(MODEL_ID)
        port = standins.free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("SOMA_")},
               "PYTHONPATH": source_path(), "SOMA_HTTP_HOST": "127.0.0.1", "SOMA_HTTP_PORT": str(port),
               "SOMA_JWT_ISSUER": ISSUER, "SOMA_JWT_AUDIENCE": AUDIENCE,
               "SOMA_OPENFGA_STORE_ID_FILE": str(Path(work, "store-id")), "SOMA_OPENFGA_MODEL_ID_FILE": str(Path(work, "model-id")),
               "SOMA_SECRETS_DIR": work, "SOMA_AUDIT_SINK": "log",
               "SOMA_RATE_LIMIT": json.dumps({"rate": 1_000_000, "burst": 1_000_000})}
        servers = [identity.start(), fga.start(), upstream.start(), redis.start()]
        env.update({"SOMA_JWKS_URL": identity.url + "/.well-known/jwks.json", "SOMA_OPENFGA_API_URL": fga.url,
                    "SOMA_REDIS_URL": redis.url,
                    "SOMA_UPSTREAMS": json.dumps({"orchestrator": upstream.url, "tools": upstream.url, "memory": upstream.url})})
        gateway = subprocess.Popen([sys.executable, "-m", "soma_gateway"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            gateway_url = f"http://127.0.0.1:{port}"
            wait_ready(gateway_url, gateway)
            token = identity.token("bench", sub="bob", tenant="acme", lifetime=3600)
            body = b'{"input": {"ticket": 42}}'
            via = httpx.Client(base_url=gateway_url, headers={"authorization": f"Bearer {token}"})
            direct = httpx.Client(base_url=upstream.url)
            timings: dict[str, list[float]] = {"direct": [], "gateway": []}
            for n in range(args.warmup + args.requests):
                for name, client, path in (("direct", direct, "/workflows/acme-triage/runs"),
                                           ("gateway", via, "/v1/workflows/acme-triage/runs")):
                    started = time.perf_counter()
                    answer = client.post(path, content=body)
                    elapsed = time.perf_counter() - started
                    if answer.status_code != 200:
                        raise SystemExit(f"{name}: {answer.status_code} {answer.text[:300]}")
                    if n >= args.warmup:
                        timings[name].append(elapsed * 1000)
            via.close()
            direct.close()
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
            for server in servers:
                server.stop()
    report(timings, fga_checks=len(fga.asked))
    return 0


def report(timings: dict[str, list[float]], fga_checks: int) -> None:
    d, g = timings["direct"], timings["gateway"]
    print(f"gateway added latency, {len(g)} sequential requests per path, {os.cpu_count()} CPUs "
          f"(JWT RS256 verify + Redis rate limit + OpenFGA Check to the local stand-in + audit event + forward)")
    print(f"{'path':<10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, values in (("direct", d), ("gateway", g)):
        print(f"{name:<10}{percentile(values, 50):>10.3f}{percentile(values, 99):>10.3f}{statistics.fmean(values):>10.3f}")
    print(f"{'added':<10}{percentile(g, 50) - percentile(d, 50):>10.3f}{percentile(g, 99) - percentile(d, 99):>10.3f}"
          f"{statistics.fmean(g) - statistics.fmean(d):>10.3f}")
    print(f"OpenFGA checks answered by the stand-in: {fga_checks}; load average during the run: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} (other work on this machine shows in p99)")


if __name__ == "__main__":
    sys.exit(main())
