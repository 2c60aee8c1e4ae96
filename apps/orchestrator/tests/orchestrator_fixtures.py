"""Hand-written workflow definitions for the orchestrator's tests, compiled by a tiny ``test`` compiler
(the crews part plugs ``crew`` in the same way), and the app as the tests run it."""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from typing import Any, TypedDict

from fastapi.testclient import TestClient
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from soma_orchestrator.app import Dependencies, build_app
from soma_orchestrator.definitions import Definition, DefinitionError, Runtime
from soma_orchestrator.settings import OrchestratorSettings
from soma_service.telemetry import Telemetry

STORE_ID, MODEL_ID = "01JH6Q8ZK3P5R7T9V2X4Y6A8C0", "01JH6Q9B1D3F5H7K9M2N4P6R8S"
CALLS: Counter = Counter()                      # (graph, node) -> attempts, across apps in one process
GATES: dict[str, threading.Event] = {}          # a "gated" step waits for its gate


class State(TypedDict, total=False):
    topic: str
    gate: str
    notes: str
    answer: str
    approved: str
    tool_results: list


def two_step(runtime: Runtime) -> StateGraph:
    async def research(state: State) -> dict:
        CALLS["two-step", "research"] += 1
        reply = await runtime.model_for("researcher").ainvoke([HumanMessage(f"research {state['topic']}")])
        return {"notes": reply.content}

    async def write(state: State) -> dict:
        CALLS["two-step", "write"] += 1
        reply = await runtime.model_for("writer").ainvoke([HumanMessage(f"write from: {state['notes']}")])
        return {"answer": reply.content}

    graph = StateGraph(State)
    graph.add_node("research", research)
    graph.add_node("write", write)
    graph.add_edge(START, "research")
    graph.add_edge("research", "write")
    graph.add_edge("write", END)
    return graph


def gated(runtime: Runtime) -> StateGraph:
    async def one(state: State) -> dict:
        CALLS["gated", "one"] += 1
        return {"notes": "one done"}

    async def wait(state: State) -> dict:
        CALLS["gated", "wait"] += 1
        gate = GATES[state["gate"]]
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return {"answer": "gate passed"}

    graph = StateGraph(State)
    graph.add_node("one", one)
    graph.add_node("wait", wait, timeout=30)
    graph.add_edge(START, "one")
    graph.add_edge("one", "wait")
    graph.add_edge("wait", END)
    return graph


def approval(runtime: Runtime) -> StateGraph:
    def draft(state: State) -> dict:
        return {"notes": f"draft about {state['topic']}"}

    def review(state: State) -> dict:
        decision = interrupt({"question": "publish this draft?", "draft": state["notes"]})
        return {"approved": decision}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_node("review", review)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "review")
    graph.add_edge("review", END)
    return graph


def slow(runtime: Runtime) -> StateGraph:
    async def crawl(state: State) -> dict:
        CALLS["slow", "crawl"] += 1
        await asyncio.sleep(30)
        return {}

    graph = StateGraph(State)
    graph.add_node("crawl", crawl)
    graph.add_edge(START, "crawl")
    graph.add_edge("crawl", END)
    return graph


def tool_user(runtime: Runtime) -> StateGraph:
    async def use_tools(state: State) -> dict:
        tools = runtime.tools_for("researcher", ("web-search", "shell"))
        results = []
        for index, name in enumerate(("web-search", "shell")):
            message = await tools[name].ainvoke({"name": name, "args": {"query": state["topic"]}, "id": f"call-{index}",
                                                 "type": "tool_call"})
            results.append({"tool": name, "status": message.status, "content": message.content})
        return {"tool_results": results}

    graph = StateGraph(State)
    graph.add_node("use_tools", use_tools)
    graph.add_edge(START, "use_tools")
    graph.add_edge("use_tools", END)
    return graph


def tool_user_sync(runtime: Runtime) -> StateGraph:
    """The same calls from a synchronous node (LangGraph runs it in a worker thread)."""
    def use_tools(state: State) -> dict:
        tools = runtime.tools_for("researcher", ("web-search", "shell"))
        results = []
        for index, name in enumerate(("web-search", "shell")):
            message = tools[name].invoke({"name": name, "args": {"query": state["topic"]}, "id": f"call-{index}",
                                          "type": "tool_call"})
            results.append({"tool": name, "status": message.status, "content": message.content})
        return {"tool_results": results}

    graph = StateGraph(State)
    graph.add_node("use_tools", use_tools)
    graph.add_edge(START, "use_tools")
    graph.add_edge("use_tools", END)
    return graph


GRAPHS = {"two-step": (two_step, ("researcher", "writer"), ()), "gated": (gated, (), ()), "approval": (approval, (), ()),
          "slow": (slow, (), ()), "tool-user": (tool_user, ("researcher",), ("web-search", "shell")),
          "tool-user-sync": (tool_user_sync, ("researcher",), ("web-search", "shell"))}


def compile_test(text: str, source: str, available_tools: frozenset[str]) -> Definition:
    """``{"graph": "<name>"}`` → that hand-written graph; errors name the source, line and field."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(source, exc.lineno, "(document)", f"not JSON: {exc.msg}") from None
    name = body.get("graph") if isinstance(body, dict) else None
    if name not in GRAPHS:
        raise DefinitionError(source, 1, "graph", f"expected one of {sorted(GRAPHS)}, got {name!r}")
    build, agents, tools = GRAPHS[name]
    return Definition(name=name, kind="test", source=source, build=build, agents=agents, tools=tools)


@tool("web-search")
def web_search(query: str) -> str:
    """Search the web (a test tool)."""
    return f"results for {query}"


@tool("shell")
def shell(query: str) -> str:
    """Run a shell command (a test tool nobody may call)."""
    raise AssertionError("the shell tool ran although OpenFGA refused it")


class ListSink:
    def __init__(self):
        self.events: list[dict] = []

    async def start(self): ...
    async def stop(self): ...

    async def emit(self, event: dict) -> None:
        self.events.append(event)


@contextlib.contextmanager
def orchestrator_app(postgres: str, fga, models, secrets_dir, compilers: dict | None = None, **settings: Any):
    """The orchestrator app in a TestClient (its lifespan: pool, checkpointer, recovery); yields
    (client, audit sink, span exporter). ``compilers``: default the ``test`` compiler only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sink = ListSink()
    values = dict(database_dsn=SecretStr(postgres), openfga_api_url=fga.url, openfga_store_id=SecretStr(STORE_ID),
                  openfga_model_id=SecretStr(MODEL_ID), model_base_url="http://127.0.0.1:9/v1",
                  model_api_key=SecretStr("unused"), model_name="scripted", audit_sink="log", step_timeout_seconds=5,
                  step_max_attempts=2, step_backoff_seconds=0.01, secrets_dir=secrets_dir, database_pool_size=4)
    values.update(settings)
    config = OrchestratorSettings.from_env({}, **values)
    app = build_app(config, Dependencies(audit=sink, models=models, tools={"web-search": web_search, "shell": shell},
                                         compilers=compilers or {"test": compile_test}),
                    telemetry=Telemetry(provider, MeterProvider(), None, None), configure_logging=False)
    with TestClient(app) as client:
        yield client, sink, exporter


def caller(principal: str = "user:bob", tenant: str = "acme") -> dict[str, str]:
    return {"X-Soma-Tenant": tenant, "X-Soma-Principal": principal}


def register(client: TestClient, workflow_id: str, graph: str, headers: dict | None = None):
    return client.put(f"/workflows/{workflow_id}", json={"kind": "test", "source": json.dumps({"graph": graph})},
                      headers=headers or caller())


def wait_for(client: TestClient, workflow_id: str, run_id: str, *statuses: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = client.get(f"/workflows/{workflow_id}/runs/{run_id}", headers=caller()).json()
        if state.get("status") in statuses:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} stayed {state.get('status')} (waited for {statuses}): {state}")
        time.sleep(0.02)


def sse(client: TestClient, path: str, **headers: str) -> list[dict]:
    """Read the event stream to its end: [{"id", "event", "data"}]."""
    events, current = [], {}
    with client.stream("GET", path, headers={**caller(), **headers}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                current = {}
                continue
            key, _, value = line.partition(": ")
            current[key] = json.loads(value) if key == "data" else value
    return events
