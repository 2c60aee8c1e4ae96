"""The orchestrator through its API, on a real PostgreSQL (checkpoints and tables), the OpenFGA stand-in
and the scripted model: runs, their event streams, interrupts, cancellation, timeouts, authorization, audit
and spans."""
from __future__ import annotations

import json
import threading

import pytest

from orchestrator_fixtures import CALLS, GATES, caller, orchestrator_app, register, sse, wait_for
from soma_orchestrator.scripted import ScriptedModels

WORKFLOWS = ("acme-brief", "acme-gated", "acme-approval", "acme-slow", "acme-tools", "acme-tools-sync", "acme-secret", "acme-same")


@pytest.fixture(scope="module")
def models():
    return ScriptedModels({
        "researcher": ["notes: otters hold hands", "notes: second run"],
        "writer": [lambda prompt: "article <" + prompt[-1].content + ">", "second article"],
    })


@pytest.fixture(scope="module")
def app(postgres, fga, models, tmp_path_factory):
    fga.decisions.update({("user:bob", "can_run", f"workflow:{w}"): True for w in WORKFLOWS if w != "acme-secret"})
    fga.decisions[("workflow:acme-tools", "can_call", "tool:web-search")] = True
    fga.decisions[("workflow:acme-tools-sync", "can_call", "tool:web-search")] = True
    with orchestrator_app(postgres, fga, models, tmp_path_factory.mktemp("secrets"), step_timeout_seconds=5) as (client, sink, spans):
        for workflow, graph in [("acme-brief", "two-step"), ("acme-gated", "gated"), ("acme-approval", "approval"),
                                ("acme-slow", "slow"), ("acme-tools", "tool-user"), ("acme-secret", "two-step"),
                                ("acme-tools-sync", "tool-user-sync")]:
            assert register(client, workflow, graph).status_code == 200
        yield client, sink, spans


def start(client, workflow: str, body: dict, headers: dict | None = None):
    return client.post(f"/workflows/{workflow}/runs", json={"input": body}, headers=headers or caller())


def test_a_two_step_run_streams_its_events_in_order_and_each_step_sees_the_previous_output(app, models):
    client, sink, spans = app
    answer = start(client, "acme-brief", {"topic": "otters"})
    assert answer.status_code == 201, answer.text
    run = answer.json()
    assert run["status"] == "running" and run["caller"] == "user:bob"

    events = sse(client, f"/workflows/acme-brief/runs/{run['run_id']}/events")
    assert [(e["event"], e["data"]["data"].get("node")) for e in events] == [
        ("run.started", None), ("step", "research"), ("step", "write"), ("run.succeeded", None)]
    assert [int(e["id"]) for e in events] == [1, 2, 3, 4]
    assert events[-1]["data"]["data"]["output"]["answer"] == "article <write from: notes: otters hold hands>"
    assert models.seen["researcher"][0][-1].content == "research otters"

    state = client.get(f"/workflows/acme-brief/runs/{run['run_id']}", headers=caller()).json()
    assert state["status"] == "succeeded" and state["next"] == [] and state["values"]["notes"] == "notes: otters hold hands"
    # a client reconnecting after event 2 gets the rest only
    rest = sse(client, f"/workflows/acme-brief/runs/{run['run_id']}/events", **{"Last-Event-ID": "2"})
    assert [e["id"] for e in rest] == ["3", "4"]
    history = client.get(f"/workflows/acme-brief/runs/{run['run_id']}/history", headers=caller()).json()["checkpoints"]
    assert [c["next"] for c in history] == [["__start__"], ["research"], ["write"], []]
    assert [c["step"] for c in history] == [-1, 0, 1, 2]

    # audit: the start (allow) and the finish, in the contract's shape, with no prompt or output in them
    mine = [e for e in sink.events if e["attributes"].get("run.id") == run["run_id"]]
    assert [(e["action"], e["decision"]) for e in mine] == [("workflow.run.start", "allow"), ("workflow.run.finish", "allow")]
    assert mine[1]["attributes"]["run.status"] == "succeeded"
    assert mine[0]["actor"] == {"type": "user", "id": "bob"} and mine[0]["resource"] == {"type": "workflow", "id": "acme-brief"}
    assert mine[0]["source"] == "orchestrator" and mine[0]["tenant"] == "acme" and len(mine[0]["trace_id"]) == 32
    assert "otters" not in json.dumps(mine)

    # one span per step, under the run's span, naming run, workflow and node
    steps = [s for s in spans.get_finished_spans() if s.attributes.get("soma.run.id") == run["run_id"]]
    by_name = {s.name: s for s in steps}
    assert set(by_name) == {"workflow.run", "workflow.step research", "workflow.step write"}
    for node in ("research", "write"):
        span = by_name[f"workflow.step {node}"]
        assert span.attributes["langgraph.node"] == node and span.attributes["soma.workflow.id"] == "acme-brief"
        assert span.parent.span_id == by_name["workflow.run"].context.span_id


def test_the_same_inputs_and_model_answers_give_the_same_run(postgres, fga, tmp_path):
    """Determinism: two orchestrators, the same script and input → the same events and the same output."""
    fga.decisions[("user:bob", "can_run", "workflow:acme-same")] = True
    script = {"researcher": ["notes: beavers build dams"], "writer": [lambda prompt: "article <" + prompt[-1].content + ">"]}
    runs = []
    for attempt in range(2):
        with orchestrator_app(postgres, fga, ScriptedModels(script), tmp_path) as (client, _, _):
            if attempt == 0:
                register(client, "acme-same", "two-step")
            run = start(client, "acme-same", {"topic": "beavers"}).json()
            events = sse(client, f"/workflows/acme-same/runs/{run['run_id']}/events")
            runs.append([(e["event"], e["data"]["data"]) for e in events])
    assert runs[0] == runs[1]
    assert runs[0][-1][1]["output"]["answer"] == "article <write from: notes: beavers build dams>"


def test_an_interrupted_run_waits_for_a_person_and_resumes_with_their_answer(app):
    client, sink, _ = app
    run = start(client, "acme-approval", {"topic": "otters"}).json()
    state = wait_for(client, "acme-approval", run["run_id"], "interrupted")
    assert state["next"] == ["review"]
    assert state["interrupts"][0]["value"] == {"question": "publish this draft?", "draft": "draft about otters"}
    first = sse(client, f"/workflows/acme-approval/runs/{run['run_id']}/events")
    assert [e["event"] for e in first][-1] == "run.interrupted"      # the stream ends while the run waits

    wrong = client.post(f"/workflows/acme-brief/runs/{run['run_id']}/resume", json={"value": "yes"}, headers=caller())
    assert wrong.status_code == 404                                 # a run is found only under its own workflow
    resumed = client.post(f"/workflows/acme-approval/runs/{run['run_id']}/resume", json={"value": "yes, publish"}, headers=caller())
    assert resumed.status_code == 200, resumed.text
    done = wait_for(client, "acme-approval", run["run_id"], "succeeded")
    assert done["values"]["approved"] == "yes, publish"
    again = client.post(f"/workflows/acme-approval/runs/{run['run_id']}/resume", json={"value": "no"}, headers=caller())
    assert again.status_code == 409 and again.json()["error"]["code"] == "run_not_interrupted"
    kinds = [e["event"] for e in sse(client, f"/workflows/acme-approval/runs/{run['run_id']}/events")]
    assert kinds == ["run.started", "step", "run.interrupted", "run.resumed", "step", "run.succeeded"]
    assert "yes, publish" not in json.dumps([e for e in sink.events if e["attributes"].get("run.id") == run["run_id"]])


def test_cancel_stops_a_running_step_and_the_run_stays_cancelled(app):
    client, sink, _ = app
    GATES["cancel"] = threading.Event()
    run = start(client, "acme-gated", {"gate": "cancel"}).json()
    path = f"/workflows/acme-gated/runs/{run['run_id']}"
    wait_for(client, "acme-gated", run["run_id"], "running")
    while client.get(path, headers=caller()).json()["next"] != ["wait"]:
        pass
    cancelled = client.post(f"{path}/cancel", headers=caller())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["error"] == "cancelled by user:bob"
    GATES["cancel"].set()
    assert client.get(path, headers=caller()).json()["status"] == "cancelled"
    assert client.post(f"{path}/cancel", headers=caller()).status_code == 409
    assert client.post(f"{path}/resume", json={"value": 1}, headers=caller()).status_code == 409
    assert [e["event"] for e in sse(client, f"{path}/events")][-1] == "run.cancelled"
    cancel_events = [e for e in sink.events if e["action"] == "workflow.run.cancel" and e["attributes"]["run.id"] == run["run_id"]]
    assert len(cancel_events) == 1 and cancel_events[0]["decision"] == "allow"


def test_an_interrupted_run_can_be_cancelled(app):
    client, _, _ = app
    run = start(client, "acme-approval", {"topic": "x"}).json()
    wait_for(client, "acme-approval", run["run_id"], "interrupted")
    assert client.post(f"/workflows/acme-approval/runs/{run['run_id']}/cancel", headers=caller()).json()["status"] == "cancelled"


def test_a_step_over_its_timeout_is_retried_then_fails_the_run_with_a_clear_error(postgres, fga, models, tmp_path):
    fga.decisions[("user:bob", "can_run", "workflow:acme-slow")] = True
    with orchestrator_app(postgres, fga, models, tmp_path, step_timeout_seconds=0.1, step_max_attempts=2) as (client, sink, spans):
        before = CALLS["slow", "crawl"]
        run = start(client, "acme-slow", {}).json()
        state = wait_for(client, "acme-slow", run["run_id"], "failed")
        assert CALLS["slow", "crawl"] - before == 2                     # the first attempt and one retry
        assert state["error"].startswith("step 'crawl' timed out: an attempt may take 0.1 s")
        assert sse(client, f"/workflows/acme-slow/runs/{run['run_id']}/events")[-1]["data"]["data"]["error"] == state["error"]
        attempts = [s for s in spans.get_finished_spans() if s.name == "workflow.step crawl"]
        assert len(attempts) == 2 and all(s.status.status_code.name == "ERROR" for s in attempts)
        finish = [e for e in sink.events if e["action"] == "workflow.run.finish"]
        assert finish[-1]["attributes"]["run.status"] == "failed"


def test_can_run_refused_is_403_audited_as_deny_and_starts_nothing(app, fga):
    client, sink, _ = app
    answer = start(client, "acme-secret", {"topic": "x"})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "not_permitted"
    deny = sink.events[-1]
    assert (deny["action"], deny["decision"], deny["resource"]["id"]) == ("workflow.run.start", "deny", "acme-secret")
    assert deny["reason"].startswith("not_permitted: user:bob may not run workflow:acme-secret")
    assert ("user:bob", "can_run", "workflow:acme-secret") in fga.asked


def test_a_refused_tool_call_is_an_answer_the_graph_reads_and_is_audited(app, fga):
    client, sink, _ = app
    run = start(client, "acme-tools", {"topic": "otters"}).json()
    state = wait_for(client, "acme-tools", run["run_id"], "succeeded")
    allowed, refused = state["values"]["tool_results"]
    assert allowed == {"tool": "web-search", "status": "success", "content": "results for otters"}
    assert refused["status"] == "error" and refused["content"] == "not permitted: workflow 'acme-tools' may not call tool 'shell'"
    calls = [e for e in sink.events if e["action"] == "tool.invoke" and e["attributes"]["run.id"] == run["run_id"]]
    assert [(e["resource"]["id"], e["decision"]) for e in calls] == [("web-search", "allow"), ("shell", "deny")]
    assert calls[0]["actor"] == {"type": "service", "id": "acme-tools"} and calls[0]["attributes"]["agent"] == "researcher"
    assert "otters" not in json.dumps(calls)
    assert ("workflow:acme-tools", "can_call", "tool:shell") in fga.asked


def test_tool_calls_from_a_synchronous_step_are_checked_the_same_way(app):
    client, sink, _ = app
    run = start(client, "acme-tools-sync", {"topic": "voles"}).json()
    allowed, refused = wait_for(client, "acme-tools-sync", run["run_id"], "succeeded")["values"]["tool_results"]
    assert allowed["content"] == "results for voles" and refused["status"] == "error"
    assert refused["content"].startswith("not permitted")
    calls = [e for e in sink.events if e["action"] == "tool.invoke" and e["attributes"]["run.id"] == run["run_id"]]
    assert [e["decision"] for e in calls] == ["allow", "deny"]


def test_with_openfga_down_runs_are_refused_and_tool_calls_fail_closed(app, fga):
    client, sink, _ = app
    fga.fail_with = 500
    try:
        refused = start(client, "acme-brief", {"topic": "x"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "authorization_unavailable"
        assert sink.events[-1]["decision"] == "deny" and sink.events[-1]["reason"].startswith("authorization_unavailable")
    finally:
        fga.fail_with = None
    # a run already allowed whose tool check gets no answer: nothing is called, the run fails
    run = start(client, "acme-tools", {"topic": "x"}).json()
    fga.fail_with = 500
    try:
        state = wait_for(client, "acme-tools", run["run_id"], "failed", "succeeded")
    finally:
        fga.fail_with = None
    assert state["status"] == "failed" and "AuthorizationUnavailable" in state["error"]


def test_requests_without_the_gateway_headers_are_refused(app):
    client, _, _ = app
    answer = client.post("/workflows/acme-brief/runs", json={"input": {}})
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "caller_unidentified"
    assert "X-Soma-Tenant" in answer.json()["error"]["message"]
    other_tenant = client.get("/workflows/acme-brief", headers=caller(tenant="globex"))
    assert other_tenant.status_code == 404


def test_readiness_names_postgresql_and_openfga(app):
    client, _, _ = app
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert {c["name"]: c["ok"] for c in ready.json()["checks"]} == {"postgresql": True, "openfga": True}


def test_bad_bodies_and_bad_definitions_name_what_is_wrong_and_register_nothing(app):
    client, _, _ = app
    missing = client.put("/workflows/acme-new", json={"kind": "test"}, headers=caller())
    assert missing.status_code == 400 and "body.source" in missing.json()["error"]["message"]
    kind = client.put("/workflows/acme-new", json={"kind": "crew", "source": "x"}, headers=caller())
    assert kind.status_code == 400 and kind.json()["error"]["message"].startswith("body.kind: kind 'crew' is not one")
    bad = client.put("/workflows/acme-new", json={"kind": "test", "source": '{"graph": "nope"}', "source_name": "new.json"},
                     headers=caller())
    assert bad.status_code == 400 and bad.json()["error"] == {
        "code": "invalid_definition", "request_id": bad.json()["error"]["request_id"],
        "message": "new.json:1: graph: expected one of ['approval', 'gated', 'slow', 'tool-user', 'tool-user-sync', 'two-step'], got 'nope'"}
    assert client.get("/workflows/acme-new", headers=caller()).status_code == 404
    extra = client.post("/workflows/acme-brief/runs", json={"input": {}, "priority": 1}, headers=caller())
    assert extra.status_code == 400 and "body.priority" in extra.json()["error"]["message"]
    bad_id = client.put("/workflows/bad:id", json={"kind": "test", "source": "{}"}, headers=caller())
    assert bad_id.status_code == 400 and "path.workflow_id" in bad_id.json()["error"]["message"]


def test_registering_again_makes_a_new_version_and_runs_keep_theirs(app):
    client, _, _ = app
    first = client.get("/workflows/acme-brief", headers=caller()).json()
    second = register(client, "acme-brief", "two-step").json()
    assert second["version"] == first["version"] + 1 and second["agents"] == ["researcher", "writer"]
    taken = client.put("/workflows/acme-brief", json={"kind": "test", "source": '{"graph": "slow"}'}, headers=caller(tenant="globex"))
    assert taken.status_code == 409


def test_every_audit_event_of_this_module_is_accepted_by_the_audit_pipelines_own_sql(app, tmp_path):
    """Runs last in the module: the start/finish/cancel/resume and tool decisions above, allows and denials,
    through components/core/audit/sql in chdb (tests/governance/audit_pipeline.py)."""
    from tests.governance.audit_pipeline import Pipeline, as_message

    _, sink, _ = app
    actions = {(e["action"], e["decision"]) for e in sink.events}
    assert {("workflow.run.start", "allow"), ("workflow.run.start", "deny"), ("workflow.run.finish", "allow"),
            ("workflow.run.cancel", "allow"), ("workflow.run.resume", "allow"), ("tool.invoke", "allow"),
            ("tool.invoke", "deny")} <= actions
    pipeline = Pipeline(str(tmp_path / "chdb"))
    try:
        for event in sink.events:
            pipeline.deliver(as_message(event))
            assert pipeline.errors_for(as_message(event)) == [], event
            assert pipeline.accepted(event["event_id"]) == 1, event
    finally:
        pipeline.close()
