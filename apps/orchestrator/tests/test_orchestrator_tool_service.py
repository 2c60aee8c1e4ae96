"""Runs use the tool service's tools over MCP, end to end in one process: the real tool service (uvicorn on
127.0.0.1, its sandbox's child processes) and the orchestrator on a real PostgreSQL, each asking OpenFGA (the
gateway's stand-in, one per service, normally answering alike) and each writing its own audit events. The
example crew incident-triage runs on the scripted model; its triager calls the tool service's `log-search`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from orchestrator_fixtures import MODEL_ID, STORE_ID, caller, orchestrator_app, wait_for
from soma_gateway.standins import OpenFgaStandIn
from soma_orchestrator.crews import compile_crew
from soma_orchestrator.scripted import ScriptedModels
from soma_tools.app import Dependencies as ToolDependencies, build_app as build_tools_app
from soma_tools.settings import ToolsSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "tests"))
from toolservice_servers import Events, ThreadedServer  # noqa: E402 - the tool service's own test servers

CREW = Path(__file__).resolve().parents[1] / "crews" / "incident-triage.yaml"
WORKFLOW, PRINCIPAL = "incident-triage", "workflow:incident-triage"
INCIDENT = {"inputs": {"incident": "checkout returns 502", "service": "shop"}}
TOOLS = ("log-search", "runbook-lookup")


def tool_call(name: str, args: dict, call_id: str = "call-1") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


class Scripts:
    """A model provider whose script each test replaces (one orchestrator app for the module)."""

    def __init__(self):
        self.current = ScriptedModels({})

    def model_for(self, agent: str, model: str | None = None):
        return self.current.model_for(agent, model)

    def use(self, script: dict) -> ScriptedModels:
        self.current = ScriptedModels(script)
        return self.current


def grant(fgas, tool: str, allowed: bool) -> None:
    for fga in fgas:
        fga.decisions[(PRINCIPAL, "can_call", f"tool:{tool}")] = allowed


@pytest.fixture(scope="module")
def world(postgres, fga, tmp_path_factory):
    tools_fga = OpenFgaStandIn(STORE_ID, MODEL_ID, {}).start()
    fga.decisions[("user:bob", "can_run", f"workflow:{WORKFLOW}")] = True
    for name in TOOLS:
        grant((fga, tools_fga), name, True)
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "openfga_store_id").write_text(STORE_ID)
    (secrets / "openfga_model_id").write_text(MODEL_ID)
    tool_events = Events()
    settings = ToolsSettings.from_env({"SOMA_SECRETS_DIR": str(secrets), "SOMA_OPENFGA_API_URL": tools_fga.url,
                                       "SOMA_AUDIT_SINK": "log", "SOMA_TOOL_MODULES": '["orchestrator_tools"]'})
    service = ThreadedServer(build_tools_app(settings, ToolDependencies(audit=tool_events), configure_logging=False)).start()
    scripts = Scripts()
    mcp_url = f"{service.url}/mcp"
    try:
        with orchestrator_app(postgres, fga, scripts, secrets, compilers={"crew": compile_crew}, tools_mcp_url=mcp_url,
                              tools_timeout_seconds=5) as (client, sink, _):
            registered = client.put(f"/workflows/{WORKFLOW}", json={"kind": "crew", "source": CREW.read_text(),
                                                                   "source_name": "incident-triage.yaml"}, headers=caller())
            assert registered.status_code == 200, registered.text
            yield {"client": client, "events": sink.events, "tool_events": tool_events.events, "scripts": scripts,
                   "fga": fga, "tools_fga": tools_fga, "service": service, "mcp_url": mcp_url}
    finally:
        service.stop()
        tools_fga.stop()


def start_run(world) -> str:
    answer = world["client"].post(f"/workflows/{WORKFLOW}/runs", json={"input": INCIDENT}, headers=caller())
    assert answer.status_code == 201, answer.text
    return answer.json()["run_id"]


def orchestrator_tool_events(world, run_id: str) -> list[dict]:
    return [e for e in world["events"] if e["action"] == "tool.invoke" and e["attributes"]["run.id"] == run_id]


def service_events(world, tool: str, since: int) -> list[dict]:
    return [e for e in world["tool_events"][since:] if e["resource"]["id"] == tool]


def test_registration_checks_tool_names_against_what_the_tool_service_offers_the_workflow(world):
    client = world["client"]
    assert client.get(f"/workflows/{WORKFLOW}", headers=caller()).json()["tools"] == ["log-search", "runbook-lookup"]
    source = CREW.read_text().replace("tools: [log-search]", "tools: [log-search, wiki]")
    refused = client.put(f"/workflows/{WORKFLOW}", json={"kind": "crew", "source": source, "source_name": "triage.yaml"},
                         headers=caller())

    assert refused.status_code == 400
    assert "triage.yaml:15: agents.triager.tools[1]: tool 'wiki' does not exist; available tools: log-search, " \
           "runbook-lookup" in refused.json()["error"]["message"]
    assert client.get(f"/workflows/{WORKFLOW}", headers=caller()).json()["version"] == 1      # nothing stored


def test_a_crew_agent_calls_a_real_tool_of_the_tool_service_over_mcp_as_the_workflow(world):
    since = len(world["tool_events"])
    models = world["scripts"].use({
        "triager": [tool_call("log-search", {"query": "502 checkout"}), '{"severity": "sev2", "components": ["checkout"]}'],
        "investigator": ["A bad deploy of payments at 10:02. Runbook: payments-rollback."],
        "communicator": ["Checkout is failing for some customers; we are rolling back a change."]})
    run_id = start_run(world)
    state = wait_for(world["client"], WORKFLOW, run_id, "succeeded", "failed")

    assert state["status"] == "succeeded", state["error"]
    assert state["values"]["outputs"]["classify"] == {"severity": "sev2", "components": ["checkout"]}
    triager = models.models["triager"]
    assert triager.bound_tools == ["log-search"]          # the tool service's listing: name and schema
    result = triager.seen[1][-1]
    assert result.type == "tool" and "10:02:13 payments ERROR upstream 502 (502 checkout)" in str(result.content)
    # the orchestrator decided and audited for this run; the tool service decided again and ran it
    (decision,) = orchestrator_tool_events(world, run_id)
    assert (decision["decision"], decision["resource"]["id"], decision["attributes"]["agent"]) == ("allow", "log-search", "triager")
    served = service_events(world, "log-search", since)
    assert [(e["action"], e["decision"]) for e in served] == [("tool.invoke", "allow"), ("tool.invoke.result", "allow")]
    assert served[0]["actor"] == {"type": "service", "id": WORKFLOW} and served[0]["tenant"] == "acme"
    assert decision["actor"] == served[0]["actor"]                # one workflow, named alike by both services
    assert served[0]["attributes"]["transport"] == "mcp" and served[1]["attributes"]["outcome"] == "ok"
    assert served[0]["trace_id"] == decision["trace_id"]          # one trace: the run's


def test_a_tool_the_workflow_may_no_longer_call_is_refused_by_the_orchestrator_before_anything_is_sent(world):
    since = len(world["tool_events"])
    grant((world["fga"], world["tools_fga"]), "runbook-lookup", False)       # revoked after registration
    try:
        models = world["scripts"].use({
            "triager": ['{"severity": "sev3", "components": ["checkout"]}'],
            "investigator": [tool_call("runbook-lookup", {"topic": "checkout"}), "No runbook available: roll back."],
            "communicator": ["We are rolling back a change."]})
        run_id = start_run(world)
        state = wait_for(world["client"], WORKFLOW, run_id, "succeeded", "failed")
    finally:
        grant((world["fga"], world["tools_fga"]), "runbook-lookup", True)

    assert state["status"] == "succeeded", state["error"]
    refusal = models.models["investigator"].seen[1][-1]
    assert refusal.type == "tool" and "not permitted: workflow 'incident-triage' may not call tool 'runbook-lookup'" in refusal.content
    (decision,) = orchestrator_tool_events(world, run_id)
    assert decision["decision"] == "deny" and decision["reason"].startswith("not_permitted: workflow:incident-triage")
    assert service_events(world, "runbook-lookup", since) == []          # the call never left the orchestrator


def test_when_the_orchestrators_answer_is_stale_the_tool_service_refuses_the_call_too(world):
    """Both layers check: here the grant is revoked between the orchestrator's check and the tool service's
    (the orchestrator's OpenFGA still says yes), and the tool service, which enforces, refuses."""
    since = len(world["tool_events"])
    grant((world["tools_fga"],), "runbook-lookup", False)
    try:
        models = world["scripts"].use({
            "triager": ['{"severity": "sev3", "components": ["checkout"]}'],
            "investigator": [tool_call("runbook-lookup", {"topic": "checkout"}), "No runbook available: roll back."],
            "communicator": ["We are rolling back a change."]})
        run_id = start_run(world)
        state = wait_for(world["client"], WORKFLOW, run_id, "succeeded", "failed")
    finally:
        grant((world["tools_fga"],), "runbook-lookup", True)

    assert state["status"] == "succeeded", state["error"]
    refusal = models.models["investigator"].seen[1][-1]
    assert refusal.type == "tool" and "not_permitted: workflow:incident-triage lacks can_call on tool:runbook-lookup" in str(refusal.content)
    (decision,) = orchestrator_tool_events(world, run_id)
    assert decision["decision"] == "allow"
    (served,) = service_events(world, "runbook-lookup", since)
    assert (served["action"], served["decision"], served["attributes"]["reason.code"]) == ("tool.invoke", "deny", "not_permitted")
    assert served["trace_id"] == decision["trace_id"]


def test_with_the_tool_service_down_the_step_fails_clearly_the_run_fails_and_nothing_hangs(world):
    """Last in the module: it stops the tool service."""
    client, service, url = world["client"], world["service"], world["mcp_url"]

    def stop_then_call(_messages):
        service.stop()          # gone between loading the run's tools and calling one
        return tool_call("log-search", {"query": "502"})

    world["scripts"].use({"triager": [stop_then_call, tool_call("log-search", {"query": "502"})], "investigator": [],
                          "communicator": []})
    started = time.monotonic()
    run_id = start_run(world)
    state = wait_for(client, WORKFLOW, run_id, "succeeded", "failed")
    assert state["status"] == "failed"
    assert state["error"].startswith(f"ToolServiceUnavailable: the tool service at {url} did not answer the call of "
                                     "tool 'log-search': ConnectError")
    # the next run cannot even load its tools; it fails the same way, after the step policy's attempts
    second = wait_for(client, WORKFLOW, start_run(world), "succeeded", "failed")
    assert second["status"] == "failed"
    assert second["error"].startswith(f"ToolServiceUnavailable: the tool service at {url} did not list the tools of "
                                      f"workflow:{WORKFLOW}: ConnectError")
    # registration cannot check the tools: refused with 503, nothing stored
    refused = client.put(f"/workflows/{WORKFLOW}", json={"kind": "crew", "source": CREW.read_text()}, headers=caller())
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "tool_service_unavailable"
    assert refused.json()["error"]["message"].endswith("nothing was registered")
    assert client.get(f"/workflows/{WORKFLOW}", headers=caller()).json()["version"] == 1
    assert time.monotonic() - started < 15
