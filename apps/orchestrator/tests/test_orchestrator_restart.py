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


def _spans_of(exporter, run_id: str, name: str):
    return [s for s in exporter.get_finished_spans() if s.name == name and s.attributes.get("soma.run.id") == run_id]


def test_with_two_replicas_a_dead_ones_run_is_continued_by_the_other_and_cancel_reaches_the_driver(postgres, fga, tmp_path):
    """Replica A drives; B leaves A's runs alone while A's lease is live. A dies (its tasks and lease keeper
    stop, the lease is not given up): once the lease runs out B continues the run from its checkpoint. A run
    A drives and B cancels is stopped on A by A's lease keeper."""
    fga.decisions[("user:bob", "can_run", "workflow:acme-replicas")] = True
    GATES["replica"], GATES["replica-cancel"] = threading.Event(), threading.Event()
    lease = {"run_lease_seconds": 1.2}
    with orchestrator_app(postgres, fga, ScriptedModels({}), tmp_path, **lease) as (a, _, a_spans), \
            orchestrator_app(postgres, fga, ScriptedModels({}), tmp_path, **lease) as (b, _, _):
        assert register(a, "acme-replicas", "gated").status_code == 200
        before_one, before_wait = CALLS["gated", "one"], CALLS["gated", "wait"]
        run = a.post("/workflows/acme-replicas/runs", json={"input": {"gate": "replica"}}, headers=caller()).json()
        while CALLS["gated", "wait"] == before_wait:
            time.sleep(0.005)
        time.sleep(1.3)                                          # longer than a lease: A renewed it, B kept off
        assert CALLS["gated", "wait"] - before_wait == 1

        # B cancels a run A drives: A's keeper stops the step
        other = a.post("/workflows/acme-replicas/runs", json={"input": {"gate": "replica-cancel"}}, headers=caller()).json()
        while CALLS["gated", "wait"] - before_wait < 2:
            time.sleep(0.005)
        assert b.post(f"/workflows/acme-replicas/runs/{other['run_id']}/cancel", headers=caller()).json()["status"] == "cancelled"
        deadline = time.monotonic() + 5
        while not _spans_of(a_spans, other["run_id"], "workflow.step wait") and time.monotonic() < deadline:
            time.sleep(0.01)
        stopped = _spans_of(a_spans, other["run_id"], "workflow.step wait")
        assert len(stopped) == 1 and stopped[0].status.status_code.name == "ERROR"

        # A dies: no more renewals, its tasks gone, the lease not given up
        orchestrator = a.app.state.orchestrator

        async def crash():
            orchestrator._maintenance.cancel()
            for task in list(orchestrator._tasks.values()):
                task.cancel()

        a.portal.call(crash)
        GATES["replica"].set()
        state = wait_for(b, "acme-replicas", run["run_id"], "succeeded")
        assert state["values"]["answer"] == "gate passed"
        assert CALLS["gated", "one"] - before_one == 2           # once per run, never again on B
        with psycopg.connect(postgres) as conn:
            owner = conn.execute("SELECT owner FROM orchestrator_runs WHERE run_id = %s", (uuid.UUID(run["run_id"]),)).fetchone()[0]
        assert owner == b.app.state.orchestrator.owner != orchestrator.owner
        GATES["replica-cancel"].set()
