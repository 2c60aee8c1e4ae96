"""The base as a process: ``run()`` serves, drains in-flight requests on SIGTERM, and refuses bad settings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
PYTHONPATH = os.pathsep.join([str(HERE), *(str(p) for p in sorted(HERE.parents[1].glob("*/src")))])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tmp_path, **env):
    port = free_port()
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": PYTHONPATH, "SOMA_SERVICE_NAME": "sample",
                   "SOMA_HTTP_HOST": "127.0.0.1", "SOMA_HTTP_PORT": str(port), "SOMA_SECRETS_DIR": str(tmp_path),
                   "SOMA_SHUTDOWN_GRACE_SECONDS": "10", **env}
    process = subprocess.Popen([sys.executable, "-m", "soma_sample_service"], env=environment, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process, url):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    pytest.fail("the sample service did not become ready")


def test_sigterm_lets_the_in_flight_request_finish_then_exits_cleanly(tmp_path):
    (tmp_path / "api_token").write_text("t0ken")
    process, url = start(tmp_path)
    try:
        wait_ready(process, url)
        outcome = {}
        slow = threading.Thread(target=lambda: outcome.setdefault(
            "response", httpx.get(f"{url}/slow", params={"seconds": 1.5}, headers={"X-Request-Id": "drain-1"},
                                  timeout=10)))
        slow.start()
        time.sleep(0.5)  # the request is in flight
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(httpx.ConnectError):  # the listener is closed: no new work accepted
            httpx.get(f"{url}/healthz", timeout=1)
        slow.join(10)
        assert outcome["response"].status_code == 200 and outcome["response"].json() == {"slept": 1.5}
        # uvicorn re-raises the signal after its clean shutdown, so the exit reads "terminated by SIGTERM"
        assert process.wait(15) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    lines = [json.loads(line) for line in process.stdout.read().splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert "shutdown signal received; draining" in messages
    drained = next(line for line in lines if line["message"] == "shutdown signal received; draining")
    assert drained["in_flight"] == 1
    access = next(line for line in lines if line.get("request_id") == "drain-1")
    assert access["http_status"] == 200
    assert messages.index("service stopped") > messages.index(access["message"])


def test_a_secret_passed_as_an_environment_variable_stops_the_start_naming_it(tmp_path):
    (tmp_path / "api_token").write_text("t0ken")
    process, _ = start(tmp_path, SOMA_API_TOKEN="leaked")
    assert process.wait(20) == 2
    error = process.stderr.read()
    assert "SOMA_API_TOKEN: api_token is a secret" in error and "leaked" not in error
