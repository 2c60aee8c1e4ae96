"""The gateway app end to end, in-process, against real local servers over TCP: identity's JWKS (local
server), OpenFGA's Check API (the stand-in answering with the engine's decisions from the store test),
a real redis-server, and an echo upstream. What a caller and a backing service see: allow and forward,
401/403/429 with reason codes, one audit event per decision, the headers that cross and those that do not,
upstream failures, readiness, and failing closed when identity, OpenFGA or Redis go away."""
from __future__ import annotations

import pytest

from gateway_fixtures import gateway_settings, running_gateway
from soma_gateway.routes import Route, RouteTable

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def settings(tmp_path, identity, fga, upstream, redis_server):
    return gateway_settings(tmp_path, identity, fga, upstream, redis_server,
                            rate_limit_tenants={"tight": {"rate": 0.01, "burst": 2}})


def bearer(identity, **claims) -> dict:
    return {"authorization": f"Bearer {identity.token('k1', **claims)}"}


def test_an_allowed_request_is_forwarded_with_trace_and_request_id_but_without_the_token(settings, identity, upstream):
    with running_gateway(settings) as client:
        answer = client.post("/v1/workflows/acme-triage/runs?dry=1", content=b'{"input": 1}', headers={
            **bearer(identity, sub="bob"), "traceparent": TRACEPARENT, "x-request-id": "req-123",
            "x-soma-tenant": "globex", "x-soma-principal": "user:root", "content-type": "application/json"})
        events = client.audit.events
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "req-123"
    seen = answer.json()
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == ("POST", "/workflows/acme-triage/runs", "dry=1", '{"input": 1}')
    headers = seen["headers"]
    assert "authorization" not in headers
    assert headers["x-soma-tenant"] == "acme" and headers["x-soma-principal"] == "user:bob"   # the caller's own were dropped
    assert headers["x-request-id"] == "req-123" and headers["traceparent"].split("-")[1] == TRACE
    assert headers["content-type"] == "application/json"
    [event] = events
    assert (event["decision"], event["tenant"], event["actor"], event["action"], event["resource"], event["trace_id"]) == (
        "allow", "acme", {"type": "user", "id": "bob"}, "workflow.run.start", {"type": "workflow", "id": "acme-triage"}, TRACE)
    assert event["attributes"]["request.id"] == "req-123" and "reason" not in event


def test_each_route_asks_its_relation_on_the_object_in_the_path(settings, identity, fga):
    cases = [("POST", "/v1/tools/acme-search/calls", dict(sub="acme-support", kind="agent"), 200),
             ("POST", "/v1/tools/acme-search/calls", dict(sub="alice"), 403),
             ("GET", "/v1/memory/acme-kb/records", dict(sub="acme-triage", kind="workflow"), 200),
             ("POST", "/v1/memory/acme-kb/records", dict(sub="acme-triage", kind="workflow"), 403),
             ("PUT", "/v1/agents/acme-support", dict(sub="bob"), 200),
             ("PUT", "/v1/workflows/acme-triage", dict(sub="bob"), 403)]
    with running_gateway(settings) as client:
        for method, path, claims, status in cases:
            answer = client.request(method, path, headers=bearer(identity, **claims))
            assert answer.status_code == status, (method, path, answer.text)
    assert fga.unknown == []   # every question the gateway asked is one the OpenFGA engine answered in the store test


def test_tool_listing_and_mcp_ask_about_the_callers_own_tenant_never_one_named_by_the_caller(settings, identity, fga):
    with running_gateway(settings) as client:
        listed = client.get("/v1/tools", headers=bearer(identity, sub="bob"))
        mcp = client.post("/v1/mcp", headers=bearer(identity, sub="alice"), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        outsider = client.get("/v1/tools", headers=bearer(identity, sub="bob", tenant="globex"))  # bob belongs to acme
        events = client.audit.events
    assert (listed.status_code, mcp.status_code, outsider.status_code) == (200, 200, 403)
    assert ("user:bob", "member", "tenant:acme") in fga.asked and ("user:bob", "member", "tenant:globex") in fga.asked
    assert fga.unknown == []   # answered as the OpenFGA engine answered the store test
    assert [(e["action"], e["resource"], e["decision"]) for e in events] == [
        ("tool.list", {"type": "tenant", "id": "acme"}, "allow"), ("tool.mcp", {"type": "tenant", "id": "acme"}, "allow"),
        ("tool.list", {"type": "tenant", "id": "globex"}, "deny")]


def test_a_refusal_by_openfga_is_403_not_permitted_and_audited(settings, identity):
    with running_gateway(settings) as client:
        answer = client.post("/v1/workflows/acme-triage/runs", headers={**bearer(identity, sub="gina", tenant="globex"),
                                                                       "traceparent": TRACEPARENT})
        [event] = client.audit.events
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "not_permitted" and answer.json()["error"]["request_id"]
    assert event["decision"] == "deny" and event["reason"].startswith("not_permitted: user:gina lacks can_run")
    assert event["tenant"] == "globex" and event["trace_id"] == TRACE


@pytest.mark.parametrize("headers, reason", [
    ({}, "token_missing"),
    ({"authorization": "Basic Ym9iOnB3"}, "token_malformed"),
    ("expired", "token_expired"),
    ("audience", "token_audience_invalid"),
    ("tenantless", "token_tenant_invalid"),
])
def test_an_unproven_caller_is_401_with_the_reason_and_audited_as_anonymous(settings, identity, upstream, headers, reason):
    tokens = {"expired": dict(lifetime=-300), "audience": dict(aud="other"), "tenantless": dict(tenant=None)}
    if isinstance(headers, str):
        headers = bearer(identity, **tokens[headers])
    before = len(upstream.received)
    with running_gateway(settings) as client:
        answer = client.post("/v1/workflows/acme-triage/runs", headers=headers)
        [event] = client.audit.events
    assert answer.status_code == 401 and answer.json()["error"]["code"] == reason
    assert answer.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert (event["decision"], event["actor"], event["tenant"]) == ("deny", {"type": "user", "id": "anonymous"}, "platform")
    assert event["reason"].startswith(reason) and len(upstream.received) == before


def test_a_tenant_over_its_rate_is_429_with_retry_after(settings, identity):
    with running_gateway(settings) as client:
        statuses = [client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob", tenant="tight"))
                    for _ in range(3)]
        other = client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob"))
        events = client.audit.events
    assert [a.status_code for a in statuses] == [200, 200, 429] and other.status_code == 200
    assert statuses[2].json()["error"]["code"] == "rate_limited" and int(statuses[2].headers["retry-after"]) >= 99
    assert [e["decision"] for e in events] == ["allow", "allow", "deny", "allow"] and events[2]["reason"].startswith("rate_limited")


def test_routes_outside_the_table_are_refused_before_any_question(settings, identity, fga):
    asked = len(fga.asked)
    with running_gateway(settings) as client:
        unknown = client.get("/v1/secrets", headers=bearer(identity))
        method = client.delete("/v1/workflows/acme-triage", headers=bearer(identity))
        bad_id = client.post("/v1/workflows/a:b/runs", headers=bearer(identity))
        assert client.audit.events == []
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    assert method.status_code == 405
    assert bad_id.status_code == 404 and bad_id.json()["error"]["code"] == "route_not_found"
    assert len(fga.asked) == asked


def test_a_route_may_declare_that_the_callers_token_goes_upstream(settings, identity):
    routes = RouteTable([Route("tool-call", "POST", "/v1/tools/{tool_id}/calls", "can_call", "tool", "tool_id", "tools",
                               "/tools/{tool_id}/calls", "tool.invoke", forward_authorization=True)])
    headers = bearer(identity, sub="acme-support", kind="agent")
    with running_gateway(settings, routes) as client:
        answer = client.post("/v1/tools/acme-search/calls", headers=headers)
    assert answer.status_code == 200 and answer.json()["headers"]["authorization"] == headers["authorization"]


def test_upstream_failures_are_502_and_504(tmp_path, identity, fga, redis_server):
    from soma_gateway.standins import EchoUpstream, free_port

    slow = EchoUpstream(delay=1.5).start()
    try:
        dead = f"http://127.0.0.1:{free_port()}"
        settings = gateway_settings(tmp_path, identity, fga, slow, redis_server, upstream_timeout_seconds="0.5",
                                    upstreams={"orchestrator": dead, "tools": slow.url, "memory": slow.url})
        with running_gateway(settings) as client:
            unreachable = client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob"))
            timed_out = client.post("/v1/tools/acme-search/calls", headers=bearer(identity, sub="acme-support", kind="agent"))
    finally:
        slow.stop()
    assert (unreachable.status_code, unreachable.json()["error"]["code"]) == (502, "upstream_unavailable")
    assert (timed_out.status_code, timed_out.json()["error"]["code"]) == (504, "upstream_timeout")


def test_fails_closed_when_openfga_is_unreachable(settings, identity, fga):
    with running_gateway(settings) as client:
        fga.stop()
        try:
            answer = client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob"))
            ready = client.get("/readyz")
        finally:
            fga.start()
        again = client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob"))
        events = client.audit.events
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "authorization_unavailable")
    assert ready.status_code == 503 and "openfga" in ready.json()["error"]["message"]
    assert again.status_code == 200
    assert [e["decision"] for e in events] == ["deny", "allow"] and events[0]["reason"].startswith("authorization_unavailable")


def test_fails_closed_when_redis_is_unreachable(settings, identity, redis_server):
    with running_gateway(settings) as client:
        redis_server.stop()
        try:
            answer = client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob"))
            ready = client.get("/readyz")
        finally:
            redis_server.start()
        again = client.post("/v1/workflows/acme-triage/runs", headers=bearer(identity, sub="bob"))
        events = client.audit.events
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "rate_limit_unavailable")
    assert ready.status_code == 503 and "redis" in ready.json()["error"]["message"]
    assert again.status_code == 200 and events[0]["reason"].startswith("rate_limit_unavailable")


def test_fails_closed_when_identity_is_unreachable_and_no_key_is_cached(settings, identity):
    token = bearer(identity, sub="bob")
    identity.stop()
    try:
        with running_gateway(settings) as client:
            answer = client.post("/v1/workflows/acme-triage/runs", headers=token)
            ready = client.get("/readyz")
            [event] = client.audit.events
    finally:
        identity.start()
    assert (answer.status_code, answer.json()["error"]["code"]) == (503, "identity_unavailable")
    assert ready.status_code == 503 and "identity-jwks" in ready.json()["error"]["message"]
    assert event["decision"] == "deny" and event["reason"].startswith("identity_unavailable")


def test_ready_when_every_dependency_answers_and_the_openapi_lists_the_routes(settings):
    with running_gateway(settings) as client:
        ready = client.get("/readyz")
        spec = client.get("/openapi.json").json()
    assert ready.status_code == 200, ready.text
    assert {c["name"] for c in ready.json()["checks"]} == {"redis", "identity-jwks", "openfga"}
    assert "/v1/workflows/{workflow_id}/runs" in spec["paths"] and "403" in spec["paths"]["/v1/workflows/{workflow_id}/runs"]["post"]["responses"]
