"""The public path: the real gateway (in-process, with identity's keys, Redis and OpenFGA stand-ins) routes
``POST /v1/tools/{tool_id}/calls`` to the tool service on 127.0.0.1, which sees the principal the gateway
verified from the token, not one the caller wrote into a header."""
from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import toolservice_fixtures as fixtures
from soma_gateway import standins
from soma_gateway.app import Dependencies as GatewayDependencies
from soma_gateway.app import build_app as build_gateway
from soma_gateway.settings import GatewaySettings
from soma_tools.app import Dependencies, build_app
from soma_tools.settings import ToolsSettings
from toolservice_servers import HELPER, MODEL_ID, STORE_ID, Events, ThreadedServer

ISSUER, AUDIENCE = "https://identity.test.soma.local", "soma-api"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    binary = standins.redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server: run `sh tools/fetch_redis.sh` (make test does) or install Debian's redis-server")
    secrets = tmp_path_factory.mktemp("secrets")
    (secrets / "openfga_store_id").write_text(STORE_ID)
    (secrets / "openfga_model_id").write_text(MODEL_ID)
    fga = standins.OpenFgaStandIn(STORE_ID, MODEL_ID, {(HELPER, "can_call", "tool:echo"): True}).start()
    identity = standins.IdentityKeys(ISSUER, AUDIENCE)
    identity.add_key("k1", alg="ES256")
    identity.start()
    redis = standins.RedisServer(binary, str(tmp_path_factory.mktemp("redis"))).start()
    events = Events()
    tools = ThreadedServer(build_app(
        ToolsSettings.from_env({"SOMA_SECRETS_DIR": str(secrets), "SOMA_OPENFGA_API_URL": fga.url, "SOMA_AUDIT_SINK": "log",
                                "SOMA_SANDBOX_WARM": "false"}),
        Dependencies(audit=events, tools=[fixtures.echo_v1, fixtures.shell]), configure_logging=False)).start()
    gateway = build_gateway(GatewaySettings.from_env({
        "SOMA_JWT_ISSUER": ISSUER, "SOMA_JWT_AUDIENCE": AUDIENCE, "SOMA_JWKS_URL": identity.url + "/.well-known/jwks.json",
        "SOMA_OPENFGA_API_URL": fga.url, "SOMA_SECRETS_DIR": str(secrets), "SOMA_REDIS_URL": redis.url,
        "SOMA_UPSTREAMS": json.dumps({"orchestrator": "http://127.0.0.1:9", "memory": "http://127.0.0.1:9", "tools": tools.url}),
        "SOMA_AUDIT_SINK": "log"}), deps=GatewayDependencies(audit=Events()), configure_logging=False)
    with TestClient(gateway) as client:
        yield {"client": client, "identity": identity, "events": events, "fga": fga}
    tools.stop()
    redis.stop()
    identity.stop()
    fga.stop()


def test_a_call_through_the_gateway_runs_as_the_verified_principal(stack):
    token = stack["identity"].token("k1", sub="helper", kind="agent", tenant="acme")
    answer = stack["client"].post("/v1/tools/echo/calls", json={"input": {"text": "via the edge"}},
                                  headers={"authorization": f"Bearer {token}", "x-soma-principal": "agent:root",
                                           "x-request-id": "edge-1"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"] == {"text": "via the edge"}
    decision, outcome = stack["events"].for_request("edge-1")
    assert decision["actor"] == {"type": "agent", "id": "helper"} and decision["tenant"] == "acme"
    assert outcome["attributes"]["outcome"] == "ok"
    # the gateway asked first, then the tool service asked again for the same caller
    assert stack["fga"].asked.count((HELPER, "can_call", "tool:echo")) == 2


def test_the_gateway_refuses_a_tool_the_agent_may_not_call_before_the_tool_service_hears_of_it(stack):
    token = stack["identity"].token("k1", sub="helper", kind="agent", tenant="acme")
    answer = stack["client"].post("/v1/tools/shell/calls", json={"input": {}},
                                  headers={"authorization": f"Bearer {token}", "x-request-id": "edge-2"})
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "not_permitted"
    assert stack["events"].for_request("edge-2") == []
