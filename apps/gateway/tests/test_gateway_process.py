"""The gateway as the process the image runs (``python -m soma_gateway``, uvicorn): it starts from
environment and mounted files, becomes ready against real local dependencies, serves an allowed and a refused
request, writes their audit events as JSON log lines (log sink), and stops cleanly on SIGTERM. A setting problem
stops it with exit 2 and the problem named."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx

from gateway_fixtures import AUDIENCE, ISSUER, MODEL_ID, STORE_ID
from soma_gateway import standins
from soma_gateway.bench import source_path, wait_ready


def gateway_env(tmp_path, identity, fga, upstream, redis_server, port: int) -> dict:
    (tmp_path / "store-id").write_text(STORE_ID)
    (tmp_path / "model-id").write_text(MODEL_ID)
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SOMA_")}, "PYTHONPATH": source_path(),
            "SOMA_HTTP_HOST": "127.0.0.1", "SOMA_HTTP_PORT": str(port), "SOMA_JWT_ISSUER": ISSUER, "SOMA_JWT_AUDIENCE": AUDIENCE,
            "SOMA_JWKS_URL": identity.url + "/.well-known/jwks.json", "SOMA_OPENFGA_API_URL": fga.url,
            "SOMA_OPENFGA_STORE_ID_FILE": str(tmp_path / "store-id"), "SOMA_OPENFGA_MODEL_ID_FILE": str(tmp_path / "model-id"),
            "SOMA_SECRETS_DIR": str(tmp_path), "SOMA_REDIS_URL": redis_server.url, "SOMA_AUDIT_SINK": "log",
            "SOMA_UPSTREAMS": json.dumps({"orchestrator": upstream.url, "tools": upstream.url, "memory": upstream.url})}


def test_the_process_serves_audits_and_stops_cleanly(tmp_path, identity, fga, upstream, redis_server):
    port = standins.free_port()
    process = subprocess.Popen([sys.executable, "-m", "soma_gateway"], env=gateway_env(tmp_path, identity, fga, upstream, redis_server, port),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process)
        allowed = httpx.post(url + "/v1/workflows/acme-triage/runs", headers={"authorization": "Bearer " + identity.token("k1", sub="bob")})
        refused = httpx.post(url + "/v1/workflows/acme-triage/runs", headers={"authorization": "Bearer " + identity.token("k1", sub="gina")})
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert allowed.status_code == 200 and refused.status_code == 403
    # uvicorn re-raises the signal after its clean shutdown (as the base's process test shows): "terminated by SIGTERM"
    assert process.returncode == -signal.SIGTERM, err.decode()[-2000:]
    assert any(json.loads(line).get("message") == "service stopped" for line in out.decode().splitlines() if line.startswith("{"))
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    audited = [json.loads(line["message"]) for line in lines if line.get("logger") == "soma_service.audit"]
    assert [(e["decision"], e["actor"]["id"]) for e in audited] == [("allow", "bob"), ("deny", "gina")]


def test_a_setting_problem_stops_the_start_with_exit_2(tmp_path, identity, fga, upstream, redis_server):
    env = gateway_env(tmp_path, identity, fga, upstream, redis_server, standins.free_port())
    env["SOMA_OPENFGA_STORE_ID"] = STORE_ID
    done = subprocess.run([sys.executable, "-m", "soma_gateway"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "SOMA_OPENFGA_STORE_ID: openfga_store_id is a secret" in done.stderr
