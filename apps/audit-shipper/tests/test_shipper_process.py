"""The shipper as the process the image runs (``python -m soma_audit_shipper``, uvicorn): it starts from its
environment, takes an OPA chunk over HTTP and lists Events from the (local, wire-format) API, writes both as
audit events through the log sink, and stops cleanly on SIGTERM. A setting problem stops it with exit 2."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

import soma_audit_shipper
import soma_service
from shipper_fixtures import FakeKubernetesApi, gatekeeper_event, gzipped, opa_decision, page
from tests.local_servers import free_port

PYTHONPATH = os.pathsep.join(str(Path(module.__file__).resolve().parents[1]) for module in (soma_audit_shipper, soma_service))


def environment(port: int, **settings: str) -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SOMA_")}, "PYTHONPATH": PYTHONPATH,
            "SOMA_HTTP_HOST": "127.0.0.1", "SOMA_HTTP_PORT": str(port), "SOMA_AUDIT_SINK": "log", **settings}


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the shipper did not become ready")


def test_the_process_ships_both_sources_and_stops_cleanly(tmp_path):
    (tmp_path / "token").write_text("sa-token")
    port = free_port()
    with FakeKubernetesApi([page([gatekeeper_event("5c0e8a52-1d8b-4c1e-9f53-0c8f3a1b2d41", "11")], "20")]) as api:
        env = environment(port, SOMA_KUBERNETES_API_URL=api.url, SOMA_KUBERNETES_TOKEN_FILE=str(tmp_path / "token"),
                          SOMA_CONSTRAINT_RULES=json.dumps({"imagedigests": "digest-pinned-images"}))
        process = subprocess.Popen([sys.executable, "-m", "soma_audit_shipper"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, process)
            answer = httpx.post(url + "/logs", content=gzipped([opa_decision("4ca636c1-55e4-417a-b1d8-4aceb67960d1", False)]),
                                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
            assert api.wait_for_requests(2), api.requests
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
    assert answer.status_code == 200, answer.text
    # uvicorn re-raises the signal after its clean shutdown (as the base's process test shows)
    assert process.returncode == -signal.SIGTERM, err.decode()[-2000:]
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    audited = [json.loads(line["message"]) for line in lines if line.get("logger") == "soma_service.audit"]
    assert sorted((e["source"], e["attributes"]["policy.rule"]) for e in audited) == \
        [("edge", "edge-authz"), ("gatekeeper", "digest-pinned-images")]
    assert any(line.get("message") == "service stopped" for line in lines)


def test_a_setting_problem_stops_the_start_with_exit_2():
    env = environment(free_port(), SOMA_OPA_MAX_BODY_BYTES="12", SOMA_CONSTRAINT_RULE="typo")
    done = subprocess.run([sys.executable, "-m", "soma_audit_shipper"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SOMA_OPA_MAX_BODY_BYTES" in done.stderr and "SOMA_CONSTRAINT_RULE: no such setting" in done.stderr
