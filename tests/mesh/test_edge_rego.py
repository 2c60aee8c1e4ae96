"""The edge's Rego policy, evaluated by a real Rego engine (regopy) over the route table the stack
settings generate: allow and deny cases for every route, method, tenant and scope."""
from __future__ import annotations

import base64
import json

import pytest
import regopy

from components.mesh.edge.opa import DECISION, REGO
from components.mesh.edge.routes import route_table
from components.settings import parse
from tests.helpers import stack_config

STACKS = ("dev", "prod")


def token(claims: dict) -> str:
    """An unsigned-looking JWT: OPA reads the claims only (Envoy's jwt_authn checked the signature)."""
    part = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def settings(stack: str):
    return parse(stack_config(stack), stack)


def decide(stack: str, method: str, host: str, path: str, headers: dict) -> tuple[bool, str]:
    s = settings(stack)
    engine = regopy.Interpreter()
    engine.add_module("authz", REGO.read_text())
    engine.add_data_json(json.dumps({"soma": {"edge": route_table(s.mesh.edge, s.domain)}}))
    engine.set_input({"attributes": {"request": {"http": {"method": method, "host": host, "path": path, "headers": headers}}}})
    result = json.loads(str(engine.query("data." + DECISION.replace("/", "."))))["expressions"][0]
    reason = json.loads(str(engine.query("data.soma.edge.authz.reason")))["expressions"][0]
    return result["allowed"], reason


def cases(stack: str):
    """For each route and method: the request that must pass, and the same request broken one way at a time."""
    s = settings(stack)
    for r in s.mesh.edge.routes:
        host = f"{r.host}.{s.domain}"
        for method in r.methods:
            scopes = list(r.scopes[method])
            claims = {"scope": " ".join(scopes), r.tenant_claim: "acme"}
            path, headers = r.path_prefix, {}
            if r.tenant_path_segment:
                path = r.path_prefix.rstrip("/") + "/" + "/".join(["acme"] * r.tenant_path_segment) + "/items"
            if r.tenant_header:
                headers[r.tenant_header.lower()] = "acme"
            yield r, method, host, path, headers, claims


@pytest.mark.parametrize("stack", STACKS)
def test_each_route_and_method_allows_the_right_token_and_refuses_every_broken_one(stack):
    s = settings(stack)
    checked = 0
    for r, method, host, path, headers, claims in cases(stack):
        good = {**headers, "authorization": f"Bearer {token(claims)}"}
        assert decide(stack, method, host, path, good) == (True, "allowed"), (r.name, method)
        # no token at all, and a header that is not a bearer token
        assert decide(stack, method, host, path, headers) == (False, "no valid bearer token")
        assert decide(stack, method, host, path, {**headers, "authorization": "Basic dXNlcjpwYXNz"})[0] is False
        # each needed scope missing in turn
        for missing in r.scopes[method]:
            fewer = {**claims, "scope": " ".join(x for x in r.scopes[method] if x != missing)}
            assert decide(stack, method, host, path, {**headers, "authorization": f"Bearer {token(fewer)}"}) == (
                False, "token lacks a scope this method needs"), (r.name, method, missing)
        # a method the route does not serve
        other = next(m for m in ("PUT", "PATCH", "DELETE", "GET") if m not in r.methods)
        assert decide(stack, other, host, path, good) == (False, "method not served by this route")
        # another host, a path beside the prefix, an unknown path
        assert decide(stack, method, "evil." + s.domain, path, good) == (False, "no public route for this host and path")
        assert decide(stack, method, host, r.path_prefix + "-beside", good)[1] == "no public route for this host and path"
        assert decide(stack, method, host, "/unknown", good)[1] == "no public route for this host and path"
        if r.tenant_header or r.tenant_path_segment:
            wrong = {**claims, r.tenant_claim: "globex"}
            assert decide(stack, method, host, path, {**headers, "authorization": f"Bearer {token(wrong)}"}) == (
                False, "token tenant does not match the request's tenant"), (r.name, method)
            no_claim = {k: v for k, v in claims.items() if k != r.tenant_claim}
            assert decide(stack, method, host, path, {**headers, "authorization": f"Bearer {token(no_claim)}"})[0] is False
        if r.tenant_header:
            assert decide(stack, method, host, path, {"authorization": good["authorization"]})[0] is False
        checked += 1
    assert checked == sum(len(r.methods) for r in s.mesh.edge.routes) > 0


def test_scopes_as_a_list_claim_count_like_the_space_separated_claim():
    r, method, host, path, headers, claims = next(cases("dev"))
    as_list = {k: v for k, v in claims.items() if k != "scope"} | {"scp": list(r.scopes[method])}
    assert decide("dev", method, host, path, {**headers, "authorization": f"Bearer {token(as_list)}"}) == (True, "allowed")


def test_an_empty_route_table_denies_everything():
    engine = regopy.Interpreter()
    engine.add_module("authz", REGO.read_text())
    engine.add_data_json(json.dumps({"soma": {"edge": {"routes": []}}}))
    engine.set_input({"attributes": {"request": {"http": {"method": "GET", "host": "api.dev.soma.local", "path": "/v1/runs",
                                                          "headers": {"authorization": f"Bearer {token({'scope': 'runs:read'})}"}}}}})
    decision = json.loads(str(engine.query("data." + DECISION.replace("/", "."))))["expressions"][0]
    assert decision["allowed"] is False and decision["http_status"] == 403
    # regopy 1.5.2 answers ``undefined`` for ``allow`` here despite its default; never true
    assert "true" not in str(engine.query("data.soma.edge.authz.allow"))
