"""The tool service end to end, as its callers meet it: a real MCP client (the `mcp` package's, over
streamable HTTP) and plain HTTP against the service served by uvicorn on 127.0.0.1, with OpenFGA's check API
(the gateway's stand-in), an external MCP server as a tool source, a stand-in RAG provider, and the sandbox's
real child processes. One service for the module: process start-up is paid once."""
from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

import toolservice_fixtures as fixtures
from soma_gateway.standins import EchoUpstream, OpenFgaStandIn
from soma_tools.app import Dependencies, build_app
from soma_tools.settings import ToolsSettings
from toolservice_servers import HEADERS, HELPER, MODEL_ID, STORE_ID, Events, ThreadedServer, external_mcp_app

GRANTED = ["echo", "slow", "liar", "hog", "offline-fetch", "raw-connect", "local-fetch", "ext.add", "ext.nap",
           "memory.search", "memory.search.standin"]
SECRET = "do-not-audit-7f3a"


class StandInProvider:
    """What the memory gateway's adapters look like to the tool service: retrieve(...) -> hits."""

    def __init__(self):
        self.asked = []

    async def retrieve(self, tenant, collection, query, k, filters):
        self.asked.append((tenant, collection, query, k, dict(filters)))
        return [{"id": f"{collection}-{i}", "text": f"passage {i} about {query}", "score": 1.0 - i / 10,
                 "metadata": {"source": "handbook.md"}} for i in range(k)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    decisions = {(HELPER, "can_call", f"tool:{name}"): True for name in GRANTED}
    decisions[(HELPER, "can_read", "memory_collection:acme-handbook")] = True
    fga = OpenFgaStandIn(STORE_ID, MODEL_ID, decisions).start()
    external = ThreadedServer(external_mcp_app()).start()
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "openfga_store_id").write_text(STORE_ID)
    (secrets / "openfga_model_id").write_text(MODEL_ID)
    settings = ToolsSettings.from_env({
        "SOMA_SECRETS_DIR": str(secrets), "SOMA_OPENFGA_API_URL": fga.url, "SOMA_AUDIT_SINK": "log",
        "SOMA_TOOL_MODULES": json.dumps(["toolservice_fixtures:ALL"]),
        "SOMA_MCP_SOURCES": json.dumps([{"prefix": "ext", "url": f"{external.url}/mcp", "timeout_seconds": 1}]),
    })
    events, provider = Events(), StandInProvider()
    service = ThreadedServer(build_app(settings, Dependencies(audit=events, providers={"standin": provider}),
                                       configure_logging=False)).start()
    local = EchoUpstream().start()
    yield {"url": service.url, "mcp": f"{service.url}/mcp", "fga": fga, "events": events, "provider": provider,
           "local": local, "tmp": tmp_path_factory.mktemp("tools")}
    service.stop()
    external.stop()
    fga.stop()
    local.stop()


def mcp(world, action, *, request_id: str, headers=None):
    """Open an MCP client session to the tool service and run ``action(session)``."""

    async def run():
        sent = {**(HEADERS if headers is None else headers), "X-Request-Id": request_id}
        async with httpx.AsyncClient(headers=sent, timeout=20) as http:
            async with streamable_http_client(world["mcp"], http_client=http) as (read, write, _):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await action(session)

    return asyncio.run(run())


def text(result) -> str:
    return " ".join(block.text for block in result.content)


def test_list_shows_the_newest_version_of_each_tool_the_caller_may_call(world):
    listing = mcp(world, lambda s: s.list_tools(), request_id="list-1")
    tools = {tool.name: tool for tool in listing.tools}
    assert set(tools) == set(GRANTED)                   # "shell" exists but helper may not call it: not shown
    assert tools["echo"].meta == {"soma/version": "1.1.0"}
    assert tools["echo"].inputSchema["required"] == ["text"]
    assert tools["ext.add"].inputSchema["properties"]["a"]["type"] == "integer"


def test_a_call_runs_the_newest_version_unless_one_is_named(world):
    newest = mcp(world, lambda s: s.call_tool("echo", {"text": "hello"}), request_id="call-1")
    assert not newest.isError and newest.structuredContent == {"text": "HELLO"}
    assert newest.meta["soma/version"] == "1.1.0" and newest.meta["soma/isolation"] == "netns+guard"
    pinned = mcp(world, lambda s: s.call_tool("echo", {"text": "hello"}, meta={"soma/version": "1.0.0"}), request_id="call-2")
    assert pinned.structuredContent == {"text": "hello"}    # the tool's print() did not leak into its answer
    decision, outcome = world["events"].for_request("call-2")
    assert (decision["action"], decision["decision"], decision["resource"]) == ("tool.invoke", "allow", {"type": "tool", "id": "echo"})
    assert decision["actor"] == {"type": "agent", "id": "helper"} and decision["tenant"] == "acme"
    assert outcome["action"] == "tool.invoke.result"
    assert outcome["attributes"] | {"duration_ms": "-"} == {"transport": "mcp", "request.id": "call-2", "outcome": "ok",
                                                            "tool.version": "1.0.0", "isolation": "netns+guard", "duration_ms": "-"}


def test_rest_calls_take_the_same_path_with_versions(world):
    traced = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    with httpx.Client(base_url=world["url"], headers={**HEADERS, **traced, "X-Request-Id": "rest-1"}) as client:
        answer = client.post("/tools/echo/calls", json={"input": {"text": "hi"}, "version": "1.0.0"})
        assert answer.status_code == 200, answer.text
        assert answer.json() | {"duration_ms": 0} == {"tool": "echo", "version": "1.0.0", "output": {"text": "hi"},
                                                      "isolation": "netns+guard", "duration_ms": 0}
        missing = client.post("/tools/echo/calls", json={"input": {"text": "hi"}, "version": "2.0.0"})
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "tool 'echo' has no version '2.0.0' (it has 1.0.0, 1.1.0)"
        listing = {tool["name"]: tool for tool in client.get("/tools").json()}
        assert listing["echo"]["versions"] == ["1.0.0", "1.1.0"] and listing["local-fetch"]["network"] == ["127.0.0.1"]
        assert listing["echo"]["network"] is None
    events = world["events"].for_request("rest-1")
    assert [(e["action"], e["attributes"]["transport"], e["attributes"].get("outcome")) for e in events] == [
        ("tool.invoke", "rest", None), ("tool.invoke.result", "rest", "ok"),
        ("tool.invoke", "rest", None), ("tool.invoke.result", "rest", "not_found")]
    assert {e["trace_id"] for e in events} == {"0af7651916cd43dd8448eb211c80319c"}   # the caller's trace, continued


def test_a_tool_past_its_timeout_is_killed_and_the_call_says_so(world):
    pidfile = world["tmp"] / "slow.pid"
    started = time.monotonic()
    result = mcp(world, lambda s: s.call_tool("slow", {"pidfile": str(pidfile)}), request_id="slow-1")
    assert time.monotonic() - started < 5
    assert result.isError and text(result) == "tool_timeout: timeout: tool slow@1.0.0 did not finish within 1 s and was stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)             # the process is gone, not left sleeping
    decision, outcome = world["events"].for_request("slow-1")
    assert decision["decision"] == "allow" and outcome["attributes"]["outcome"] == "timeout"


def test_a_tool_the_caller_may_not_use_is_refused_and_audited(world):
    result = mcp(world, lambda s: s.call_tool("shell", {}), request_id="deny-1")
    assert result.isError and text(result) == "not_permitted: agent:helper lacks can_call on tool:shell"
    (event,) = world["events"].for_request("deny-1")
    assert event["decision"] == "deny" and event["reason"].startswith("not_permitted: ")
    assert (HELPER, "can_call", "tool:shell") in world["fga"].asked
    # the same over REST, and an unknown tool looks exactly like a forbidden one (nothing leaks)
    with httpx.Client(base_url=world["url"], headers=HEADERS) as client:
        assert client.post("/tools/shell/calls", json={"input": {}}).status_code == 403
        assert client.post("/tools/no-such-tool/calls", json={"input": {}}).json()["error"]["code"] == "not_permitted"


def test_without_the_gateways_headers_nothing_is_listed_or_called(world):
    result = mcp(world, lambda s: s.call_tool("echo", {"text": "x"}), request_id="anon-1", headers={})
    assert result.isError and text(result).startswith("caller_unknown: ")
    async def list_refused(session):
        with pytest.raises(McpError) as caught:
            await session.list_tools()
        return caught.value.error.message
    assert mcp(world, list_refused, request_id="anon-3", headers={}).startswith("caller_unknown: X-Soma-Tenant and X-Soma-Principal")
    with httpx.Client(base_url=world["url"], headers={"X-Request-Id": "anon-2"}) as client:
        answer = client.post("/tools/echo/calls", json={"input": {"text": "x"}})
        assert client.get("/tools").status_code == 401
        assert client.get("/readyz").json()["checks"] == [{"name": "mcp-sources", "ok": True, "seconds": pytest.approx(0, abs=1)},
                                                           {"name": "openfga", "ok": True, "seconds": pytest.approx(0, abs=1)}]
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "caller_unknown"
    for request_id, transport in (("anon-1", "mcp"), ("anon-2", "rest")):
        (event,) = world["events"].for_request(request_id)
        assert (event["actor"], event["tenant"], event["decision"], event["attributes"]["transport"]) == (
            {"type": "user", "id": "anonymous"}, "platform", "deny", transport)


def test_openfga_without_an_answer_is_never_a_yes(world):
    world["fga"].fail_with = 500
    try:
        result = mcp(world, lambda s: s.call_tool("echo", {"text": "x"}), request_id="fga-down-1")
    finally:
        world["fga"].fail_with = None
    assert result.isError and text(result).startswith("authorization_unavailable: OpenFGA answered 500")
    (event,) = world["events"].for_request("fga-down-1")
    assert event["decision"] == "deny"


def test_bad_input_is_refused_with_the_json_path_of_each_problem(world):
    result = mcp(world, lambda s: s.call_tool("echo", {"text": 5, "extra": SECRET}), request_id="bad-1")
    assert result.isError
    assert text(result) == ("invalid_input: input for echo@1.1.0 does not match its schema: $: Additional properties are "
                            f"not allowed ('extra' was unexpected); $.text: 5 is not of type 'string'")
    nested = mcp(world, lambda s: s.call_tool("memory.search", {"collection": "acme-handbook", "query": "q",
                                                                 "filters": {"team": {"nested": 1}}}), request_id="bad-2")
    assert "$.filters.team: {'nested': 1} is not of type 'string', 'number', 'boolean'" in text(nested)
    _, outcome = world["events"].for_request("bad-1")
    assert outcome["attributes"]["outcome"] == "invalid_input"
    assert SECRET not in json.dumps(world["events"].events)   # inputs are never audited


def test_output_outside_the_schema_and_memory_hogs_fail_cleanly(world):
    liar = mcp(world, lambda s: s.call_tool("liar", {}), request_id="liar-1")
    assert text(liar) == "invalid_output: tool liar@1.0.0 answered outside its output schema: $.text: 42 is not of type 'string'"
    hog = mcp(world, lambda s: s.call_tool("hog", {}), request_id="hog-1")
    assert text(hog) == "tool_failed: memory_limit: the tool exceeded its memory limit"
    assert world["events"].for_request("hog-1")[1]["attributes"]["outcome"] == "memory_limit"


def test_a_tool_without_network_cannot_connect_even_to_loopback(world):
    port = world["local"].port
    guarded = mcp(world, lambda s: s.call_tool("offline-fetch", {"host": "127.0.0.1", "port": port}), request_id="net-1")
    assert text(guarded) == "tool_failed: tool_error: NetworkDenied: network access to '127.0.0.1' is not declared by this tool"
    # around the Python guard, with the C socket: the network namespace has no usable interface at all
    raw = mcp(world, lambda s: s.call_tool("raw-connect", {"host": "127.0.0.1", "port": port}), request_id="net-2")
    if raw.meta["soma/isolation"] == "netns+guard":
        assert raw.structuredContent == {"connected": False, "error": "OSError", "errno": 101}   # ENETUNREACH
    else:   # no namespace on this kernel: the guard alone, which raw sockets get around (documented)
        pytest.skip("no network namespace here: the socket guard alone is in force")
    assert world["local"].received == []


def test_a_tool_that_declares_a_host_reaches_it_and_only_it(world):
    port = world["local"].port
    reached = mcp(world, lambda s: s.call_tool("local-fetch", {"host": "127.0.0.1", "port": port}), request_id="net-3")
    assert not reached.isError, text(reached)
    assert reached.structuredContent == {"status": "HTTP/1.1 200 OK"} and reached.meta["soma/isolation"] == "guard"
    other = mcp(world, lambda s: s.call_tool("local-fetch", {"host": "localhost", "port": port}), request_id="net-4")
    assert text(other) == "tool_failed: tool_error: NetworkDenied: network access to 'localhost' is not declared by this tool"


def test_an_external_mcp_servers_tools_are_called_under_a_prefix_with_the_same_rules(world):
    added = mcp(world, lambda s: s.call_tool("ext.add", {"a": 2, "b": 3}), request_id="ext-1")
    assert not added.isError and added.structuredContent == {"result": 5}
    decision, outcome = world["events"].for_request("ext-1")
    assert decision["resource"]["id"] == "ext.add" and outcome["attributes"]["isolation"] == "remote"
    bad = mcp(world, lambda s: s.call_tool("ext.add", {"a": "two", "b": 3}), request_id="ext-2")
    assert text(bad).startswith("invalid_input: input for ext.add@") and "$.a: 'two' is not of type 'integer'" in text(bad)
    started = time.monotonic()
    slow = mcp(world, lambda s: s.call_tool("ext.nap", {"seconds": 5}), request_id="ext-3")
    assert slow.isError and text(slow).startswith("tool_timeout: ") and time.monotonic() - started < 4


def test_memory_search_asks_the_provider_for_the_callers_tenant_and_collection(world):
    found = mcp(world, lambda s: s.call_tool("memory.search", {"collection": "acme-handbook", "query": "leave policy",
                                                                "k": 2, "filters": {"team": "hr"}}), request_id="mem-1")
    assert not found.isError, text(found)
    assert [hit["id"] for hit in found.structuredContent["hits"]] == ["acme-handbook-0", "acme-handbook-1"]
    assert world["provider"].asked[-1] == ("acme", "acme-handbook", "leave policy", 2, {"team": "hr"})
    refused = mcp(world, lambda s: s.call_tool("memory.search.standin", {"collection": "globex-secrets", "query": "q"}),
                  request_id="mem-2")
    assert text(refused) == "collection_not_permitted: agent:helper lacks can_read on memory_collection:globex-secrets"
    assert world["provider"].asked[-1][1] == "acme-handbook"    # the provider was never asked for globex-secrets


def test_langchain_binds_the_services_mcp_tools_and_calls_one(world):
    from langchain_mcp_adapters.client import MultiServerMCPClient

    from langchain_core.messages import AIMessage
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    async def run():
        client = MultiServerMCPClient({"soma": {"transport": "streamable_http", "url": world["mcp"],
                                                "headers": {**HEADERS, "X-Request-Id": "lc-1"}}})
        tools = await client.get_tools()
        step = AIMessage(content="", tool_calls=[{"name": "echo", "args": {"text": "from langgraph"}, "id": "call-1"},
                                                 {"name": "ext.add", "args": {"a": 40, "b": 2}, "id": "call-2"}])
        graph = StateGraph(MessagesState)
        graph.add_node("tools", ToolNode(tools))
        graph.add_edge(START, "tools")
        graph.add_edge("tools", END)
        return tools, await graph.compile().ainvoke({"messages": [step]})

    tools, state = asyncio.run(run())
    assert {tool.name for tool in tools} == set(GRANTED)
    _, echoed, added = state["messages"]
    assert (echoed.tool_call_id, echoed.status, added.status) == ("call-1", "success", "success")
    assert "FROM LANGGRAPH" in str(echoed.content) and "42" in str(added.content)
    assert any(e["attributes"].get("outcome") == "ok" for e in world["events"].for_request("lc-1"))


def test_every_event_the_calls_above_produced_is_accepted_by_the_audit_contract_sql(world, tmp_path):
    """Runs last in this module: every decision and outcome event of the tests above, through the contract's
    own ClickHouse SQL (chdb; tests/governance/audit_pipeline.py), none in ingest_errors."""
    from tests.governance.audit_pipeline import Pipeline, as_message

    events = world["events"].events
    assert {e["attributes"].get("outcome") for e in events} >= {"ok", "timeout", "invalid_input", "invalid_output",
                                                                  "memory_limit", "tool_error", "not_found",
                                                                  "collection_not_permitted"}
    assert {e["attributes"]["reason.code"] for e in events if "reason.code" in e["attributes"]} == {
        "allowed", "not_permitted", "authorization_unavailable", "caller_unknown"}
    pipeline = Pipeline(str(tmp_path / "chdb"))
    try:
        for event in events:
            pipeline.deliver(as_message(event))
        for event in events:
            assert pipeline.errors_for(as_message(event)) == [], event
            assert pipeline.accepted(event["event_id"]) == 1, event
    finally:
        pipeline.close()
