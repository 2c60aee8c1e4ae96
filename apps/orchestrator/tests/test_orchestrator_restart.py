"""A run survives its orchestrator: the process stops mid-run (the app's lifespan ends while a step is under
way), a new one starts on the same database and continues the run from its last checkpoint — the finished
step is not run again — and registered workflows are still there."""
from __future__ import annotations

import threading
import time
import uuid

import psycopg

from orchestrator_fixtures import CALLS, GATES, caller, orchestrator_app, register, sse, wait_for
from soma_orchestrator.scripted import ScriptedModels


def test_a_run_stopped_mid_way_continues_from_its_checkpoint_in_a_new_process(postgres, fga, tmp_path):
    fga.decisions[("user:bob", "can_run", "workflow:acme-restart")] = True
    GATES["restart"] = threading.Event()
    before_one, before_wait = CALLS["gated", "one"], CALLS["gated", "wait"]
    with orchestrator_app(postgres, fga, ScriptedModels({}), tmp_path) as (client, _, _):
        assert register(client, "acme-restart", "gated").status_code == 200
        run = client.post("/workflows/acme-restart/runs", json={"input": {"gate": "restart"}}, headers=caller()).json()
        path = f"/workflows/acme-restart/runs/{run['run_id']}"
        while CALLS["gated", "wait"] == before_wait:      # step "one" is done and checkpointed, "wait" is under way
            time.sleep(0.005)
        assert client.get(path, headers=caller()).json()["next"] == ["wait"]
    # the first orchestrator is gone; the run is still "running" in the database
    GATES["restart"].set()
    with orchestrator_app(postgres, fga, ScriptedModels({}), tmp_path) as (client, sink, _):
        state = wait_for(client, "acme-restart", run["run_id"], "succeeded")
        assert state["values"] == {"gate": "restart", "notes": "one done", "answer": "gate passed"}
        assert CALLS["gated", "one"] - before_one == 1          # not run again
        assert CALLS["gated", "wait"] - before_wait == 2        # interrupted once, then completed
        kinds = [(e["event"], e["data"]["data"].get("node")) for e in sse(client, f"{path}/events")]
        assert kinds == [("run.started", None), ("step", "one"), ("step", "wait"), ("run.succeeded", None)]
        assert client.get("/workflows/acme-restart", headers=caller()).json()["version"] == 1
        assert [e["action"] for e in sink.events] == ["workflow.run.finish"]


def test_a_run_that_died_before_its_first_checkpoint_starts_over_from_its_input(postgres, fga, tmp_path):
    """The run row and its start event exist, no checkpoint does (the process died in between)."""
    fga.decisions[("user:bob", "can_run", "workflow:acme-early")] = True
    models = ScriptedModels({"researcher": ["early notes"], "writer": ["early article"]})
    with orchestrator_app(postgres, fga, models, tmp_path) as (client, _, _):
        assert register(client, "acme-early", "two-step").status_code == 200
    run_id = str(uuid.uuid4())
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("INSERT INTO orchestrator_runs (run_id, workflow_id, version, tenant, caller, status) "
                     "VALUES (%s, 'acme-early', 1, 'acme', 'user:bob', 'running')", (uuid.UUID(run_id),))
        conn.execute("INSERT INTO orchestrator_run_events (run_id, seq, kind, data) VALUES (%s, 1, 'run.started', %s)",
                     (uuid.UUID(run_id), '{"input": {"topic": "early"}}'))
    with orchestrator_app(postgres, fga, models, tmp_path) as (client, _, _):
        state = wait_for(client, "acme-early", run_id, "succeeded")
        assert state["values"]["answer"] == "early article"
        assert models.seen["researcher"][0][-1].content == "research early"
