"""The local analogue of the staging experiment ``orchestrator-kill`` (docs/chaos.md): SIGKILL, not a shutdown.

The orchestrator runs as the process its image runs (``python -m soma_orchestrator``) on a real PostgreSQL, with
an OpenAI-compatible model server on 127.0.0.1 that answers the crew's first task and holds the second. While
the second task is under way the process is killed with SIGKILL (what Chaos Mesh's ``pod-kill`` with
``gracePeriod: 0`` does to a pod): no lifespan, no lease given up. Another process on the same database continues
the run once the dead one's lease runs out, from the checkpoint after the first task: the first task is not
asked again, the run succeeds with both answers. The new process is a second replica started beside the first,
as staging runs two (test_orchestrator_restart.py covers a process that stops, and two replicas in-process).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from orchestrator_fixtures import MODEL_ID, STORE_ID, caller
from soma_gateway.bench import source_path, wait_ready
from soma_gateway.standins import free_port

CREW = """\
name: kill-test
description: Two tasks in order, so that a run has a checkpoint between them.
process: sequential
agents:
  researcher:
    role: Researcher
    goal: Find facts about {topic}
    backstory: Careful.
  writer:
    role: Writer
    goal: Write about {topic}
    backstory: Brief.
tasks:
  research:
    description: Research {topic}.
    expected_output: Notes.
    agent: researcher
  write:
    description: Write about {topic} from the notes.
    expected_output: A paragraph.
    agent: writer
"""
LEASE_SECONDS = 2.0


class ModelServer:
    """Chat completions by role: the researcher answers at once; the writer's first call is held until released."""

    def __init__(self):
        self.calls = {"researcher": 0, "writer": 0}
        self.writer_waiting, self.release = threading.Event(), threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                text = json.dumps(body["messages"])
                agent = "writer" if "Writer" in text else "researcher"
                server.calls[agent] += 1
                if agent == "writer" and server.calls["writer"] == 1:
                    server.writer_waiting.set()
                    server.release.wait(30)
                answer = {"id": "c1", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                          "choices": [{"index": 0, "finish_reason": "stop",
                                       "message": {"role": "assistant", "content": f"{agent} answer"}}],
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass    # the caller was killed while waiting

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.release.set()
        self.httpd.shutdown()


@pytest.fixture
def model():
    server = ModelServer()
    yield server
    server.stop()


def orchestrator_env(tmp_path, postgres: str, fga, model: ModelServer, port: int) -> dict:
    for name, value in (("database_dsn", postgres), ("model_api_key", "unused"), ("openfga_store_id", STORE_ID),
                        ("openfga_model_id", MODEL_ID)):
        (tmp_path / name).write_text(value)
    import soma_orchestrator

    path = os.pathsep.join([str(Path(soma_orchestrator.__file__).resolve().parents[1]), source_path()])
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SOMA_")}, "PYTHONPATH": path,
            "SOMA_HTTP_HOST": "127.0.0.1", "SOMA_HTTP_PORT": str(port), "SOMA_SECRETS_DIR": str(tmp_path),
            "SOMA_OPENFGA_API_URL": fga.url, "SOMA_MODEL_BASE_URL": model.url, "SOMA_MODEL_NAME": "local",
            "SOMA_AUDIT_SINK": "log", "SOMA_RUN_LEASE_SECONDS": str(LEASE_SECONDS), "SOMA_STEP_TIMEOUT_SECONDS": "20",
            "SOMA_DATABASE_POOL_SIZE": "2"}


def start(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "soma_orchestrator"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def url_of(env: dict) -> str:
    return f"http://127.0.0.1:{env['SOMA_HTTP_PORT']}"


def test_a_run_whose_process_is_killed_mid_workflow_resumes_from_its_checkpoint(tmp_path, postgres, fga, model):
    """Two replicas, as staging runs them: A drives the run and is killed; B continues it once A's lease is out."""
    fga.decisions[("user:bob", "can_run", "workflow:acme-kill")] = True
    env_a = orchestrator_env(tmp_path, postgres, fga, model, free_port())
    env_b = {**env_a, "SOMA_HTTP_PORT": str(free_port())}
    a, b = start(env_a), start(env_b)           # both start at once: the slow part is importing the app
    try:
        wait_ready(url_of(env_a), a, seconds=90)
        wait_ready(url_of(env_b), b, seconds=90)
        url = url_of(env_a)
        assert httpx.put(f"{url}/workflows/acme-kill", json={"kind": "crew", "source": CREW}, headers=caller()).status_code == 200
        run = httpx.post(f"{url}/workflows/acme-kill/runs", json={"input": {"inputs": {"topic": "resilience"}}}, headers=caller()).json()
        assert model.writer_waiting.wait(30), "the crew never reached its second task"
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        assert a.returncode == -signal.SIGKILL
        model.release.set()
        deadline, state = time.monotonic() + 30, {}
        while time.monotonic() < deadline and state.get("status") not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.1)
            state = httpx.get(f"{url_of(env_b)}/workflows/acme-kill/runs/{run['run_id']}", headers=caller()).json()
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        _, err = b.communicate(timeout=30)
        a.communicate(timeout=30)
    assert state.get("status") == "succeeded", (state, err.decode()[-2000:])
    assert state["values"]["outputs"] == {"research": "researcher answer", "write": "writer answer"}
    assert model.calls == {"researcher": 1, "writer": 2}    # research not asked again; the killed write asked twice
