"""Over the rendered plans: no public route, listener or port reaches a backend without JWT validation
and OPA's decision, and the request path is configured to fail closed when OPA is unreachable.

What this shows is configuration: no Envoy runs here, so that Envoy honours ``failOpen: false``
(denies with 403 when the ext-authz call fails) is Envoy Gateway's documented behaviour, not
something observed in this sandbox.
"""
from __future__ import annotations

import json

import pytest
import yaml

from components.settings import parse
from policies.catalog import load_catalog
from tests.helpers import objects, stack_config

STACKS = ("dev", "staging", "prod")


def edge(stack):
    """The stack's settings and its edge, each route's backend namespace resolved to its name."""
    from components.mesh.edge import with_backend_names

    s = parse(stack_config(stack), stack)
    return s, with_backend_names(s.mesh.edge, s)


@pytest.mark.parametrize("stack", STACKS)
def test_every_route_on_the_gateway_has_jwt_and_fail_closed_ext_authz(plans, stack):
    s, e = edge(stack)
    plan = plans[stack]
    gateways = objects(plan, "Gateway")
    # the mesh's waypoints are Gateways too, inside the mesh only: one HBONE listener, no route of ours
    waypoints = [g for g in gateways if g["spec"]["gatewayClassName"] == "istio-waypoint"]
    assert all([(l["port"], l["protocol"]) for l in g["spec"]["listeners"]] == [(15008, "HBONE")] for g in waypoints)
    public = [g for g in gateways if g not in waypoints]
    assert len(public) == 1
    gw = public[0]
    routes = [r for r in objects(plan, "HTTPRoute")
              if any(p["name"] == gw["metadata"]["name"] for p in r["spec"]["parentRefs"])]
    policies = {}
    for p in objects(plan, "SecurityPolicy"):
        for ref in p["spec"].get("targetRefs", []):
            policies.setdefault((p["metadata"]["namespace"], ref["kind"], ref["name"]), []).append(p["spec"])
    with_backends = [r for r in routes if any(rule.get("backendRefs") for rule in r["spec"]["rules"])]
    assert {r["metadata"]["name"] for r in with_backends} == {r.name for r in e.routes}
    for route in with_backends:
        specs = policies.get((route["metadata"]["namespace"], "HTTPRoute", route["metadata"]["name"]), [])
        assert len(specs) == 1, route["metadata"]["name"]
        spec = specs[0]
        assert spec["extAuth"]["failOpen"] is False
        assert spec["extAuth"]["grpc"]["backendRefs"][0]["name"] == "opa-ext-authz-grpc"
        provider = spec["jwt"]["providers"][0]
        assert provider["remoteJWKS"]["uri"] == e.jwt.jwks_uri() and provider["issuer"] == e.jwt.issuer
        assert "optional" not in spec["jwt"] and spec["jwt"].get("failOpen") in (None, False)
    # the only route without a backend is the redirect to HTTPS, on the HTTP listener
    for route in routes:
        if route in with_backends:
            assert all(p.get("sectionName") == "https" for p in route["spec"]["parentRefs"])
            continue
        filters = [f["type"] for rule in route["spec"]["rules"] for f in rule.get("filters", [])]
        assert filters == ["RequestRedirect"] and route["spec"]["rules"][0]["filters"][0]["requestRedirect"]["scheme"] == "https"


@pytest.mark.parametrize("stack", STACKS)
def test_the_gateway_listens_on_https_and_at_most_a_redirecting_http(plans, stack):
    _, e = edge(stack)
    gw = objects(plans[stack], "Gateway")[0]
    listeners = {(l["name"], l["protocol"], l["port"]) for l in gw["spec"]["listeners"]}
    expected = {("https", "HTTPS", 443)} | ({("http-redirect", "HTTP", 80)} if e.http_redirect else set())
    assert listeners == expected
    https = next(l for l in gw["spec"]["listeners"] if l["protocol"] == "HTTPS")
    assert https["tls"]["mode"] == "Terminate"
    secret = https["tls"]["certificateRefs"][0]["name"]
    certs = [c for c in objects(plans[stack], "Certificate") if c["spec"]["secretName"] == secret]
    assert len(certs) == 1
    for l in gw["spec"]["listeners"]:
        assert l["allowedRoutes"]["namespaces"]["from"] == "Same"


@pytest.mark.parametrize("stack", STACKS)
def test_no_other_service_is_exposed_outside_the_cluster(plans, stack):
    exposed = [f"{o['metadata'].get('namespace')}/{o['metadata']['name']}" for o in objects(plans[stack], "Service")
               if (o.get("spec") or {}).get("type") in ("LoadBalancer", "NodePort")]
    assert exposed == []
    # the one public Service is the one Envoy Gateway creates from the EnvoyProxy
    proxies = objects(plans[stack], "EnvoyProxy")
    assert [p["spec"]["provider"]["kubernetes"]["envoyService"]["type"] for p in proxies] == ["LoadBalancer"]


@pytest.mark.parametrize("stack", STACKS)
def test_backends_admit_only_the_envoy_proxies(plans, stack):
    s, e = edge(stack)
    policies = [p for p in objects(plans[stack], "NetworkPolicy") if "Ingress" in p["spec"].get("policyTypes", [])]
    for route in e.routes:
        pods = dict(route.backend.pods) or {"app.kubernetes.io/name": route.backend.service}
        admitting = [p for p in policies if p["metadata"]["namespace"] == route.backend.namespace
                     and all(p["spec"]["podSelector"].get("matchLabels", {}).get(k) == v for k, v in pods.items())
                     and p["spec"]["podSelector"] != {}]
        assert admitting, route.name
        for policy in admitting:
            for rule in policy["spec"]["ingress"]:
                for peer in rule["from"]:
                    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": s.mesh.namespaces["gateway"].name}
                    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/managed-by"] == "envoy-gateway"
    # and the namespaces keep their default deny
    defaults = {p["metadata"]["namespace"] for p in objects(plans[stack], "NetworkPolicy") if p["metadata"]["name"] == "default-deny"}
    assert {r.backend.namespace for r in e.routes} <= defaults


@pytest.mark.parametrize("stack", STACKS)
def test_opa_logs_its_decisions_to_stdout_and_decides_with_the_generated_route_table(plans, stack):
    s, e = edge(stack)
    cms = [c for c in objects(plans[stack], "ConfigMap") if c["metadata"]["name"] == "opa-ext-authz-policy"]
    assert len(cms) == 1
    config = json.loads(cms[0]["data"]["config.yaml"])
    assert config["decision_logs"] == {"console": True}
    assert config["plugins"]["envoy_ext_authz_grpc"]["dry-run"] is False
    table = json.loads(cms[0]["data"]["routes.json"])
    assert {r["name"] for r in table["routes"]} == {r.name for r in e.routes}
    deployment = next(d for d in objects(plans[stack], "Deployment") if d["metadata"]["name"] == "opa-ext-authz")
    assert deployment["spec"]["replicas"] == e.opa_replicas
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "@sha256:" in container["image"] and container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("stack", STACKS)
def test_gateway_api_crds_come_from_the_vendored_chart(plans, stack):
    names = {c["metadata"]["name"] for c in objects(plans[stack], "CustomResourceDefinition")}
    assert {"gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
            "securitypolicies.gateway.envoyproxy.io", "envoyproxies.gateway.envoyproxy.io"} <= names


@pytest.mark.parametrize("stack", STACKS)
def test_controller_and_both_proxy_containers_run_the_catalog_digests(plans, stack):
    """The controller is deployed from the catalog digest, and the proxies' shutdown-manager runs that
    same digest twice over: in the EnvoyGateway configuration the controller builds the container from,
    and in the EnvoyProxy's deployment patch, where the gate sees it (policies/operator_pods.py)."""
    # dev pulls from upstream, prod from the platform's mirror of the same repository:tag@digest
    registry = plans[stack]["settings"]["registry"]
    images = {i.key: f"{i.registry if registry == 'upstream' else registry}/{i.repository}:{i.tag}@{i.digest}"
              for i in load_catalog(None).images}
    plan = plans[stack]
    controller = next(d for d in objects(plan, "Deployment") if d["metadata"]["name"] == "envoy-gateway")
    assert [c["image"] for c in controller["spec"]["template"]["spec"]["containers"]] == [images["envoy-gateway"]]
    config_map = next(c for c in objects(plan, "ConfigMap") if c["metadata"]["name"] == "envoy-gateway-config")
    config = yaml.safe_load(config_map["data"]["envoy-gateway.yaml"])
    assert config["provider"]["kubernetes"]["shutdownManager"]["image"] == images["envoy-gateway"]
    (proxy,) = objects(plan, "EnvoyProxy")
    deployment = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]
    assert deployment["container"]["image"] == images["envoy-proxy"]
    patch = deployment["patch"]
    assert patch["type"] == "StrategicMerge"
    (manager,) = patch["value"]["spec"]["template"]["spec"]["containers"]
    assert manager["name"] == "shutdown-manager" and manager["image"] == images["envoy-gateway"]
    assert set(manager["resources"]["limits"]) == {"cpu", "memory"}
    # it writes /tmp/shutdown-ready under the envoy container's read-only root
    assert deployment["container"]["securityContext"]["readOnlyRootFilesystem"] is True
    tmp = {v["name"] for v in deployment["pod"]["volumes"] if "emptyDir" in v}
    assert {(m["name"], m["mountPath"]) for m in manager["volumeMounts"]} == {(n, "/tmp") for n in tmp}


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_public_listeners_take_callers_without_a_mesh_identity(plans, stack):
    """The mesh is STRICT everywhere; the one port-level exception is the Envoy proxies' listener ports,
    where internet clients arrive (and, on those ports, only from the listener flow's sources)."""
    plan = plans[stack]
    # the observability namespace is no member (only its Prometheus pods are enrolled) and is PERMISSIVE for
    # Prometheus' out-of-mesh callers: tests/mesh/test_prometheus_in_mesh.py
    members = {n["metadata"]["name"] for n in objects(plan, "Namespace") if n["metadata"]["labels"].get("istio.io/dataplane-mode") == "ambient"}
    exceptions = [(p["metadata"]["namespace"], p["spec"]) for p in objects(plan, "PeerAuthentication")
                  if (p["spec"].get("portLevelMtls") or p["spec"].get("mtls", {}).get("mode") != "STRICT")
                  and p["metadata"]["namespace"] in members]
    gateway_ns = edge(stack)[0].mesh.namespaces["gateway"].name
    assert len(exceptions) == 1, exceptions
    namespace, spec = exceptions[0]
    listener_policy = next(n for n in objects(plan, "NetworkPolicy")
                           if n["metadata"]["namespace"] == gateway_ns and n["metadata"]["name"] == "envoy-proxy-listeners")
    listener_ports = {str(p["port"]) for p in listener_policy["spec"]["ingress"][0]["ports"]}
    assert namespace == gateway_ns
    assert spec["mtls"]["mode"] == "STRICT"
    assert spec["selector"]["matchLabels"] == listener_policy["spec"]["podSelector"]["matchLabels"]
    assert {port: mode["mode"] for port, mode in spec["portLevelMtls"].items()} == {p: "PERMISSIVE" for p in listener_ports}


@pytest.mark.parametrize("backend, problem", [
    ("soma-agents", "backend.namespace: must be <phase>.<purpose>, such as agents.agents; got 'soma-agents'"),
    ("agents.nowhere", "backend.namespace: 'agents.nowhere' names no namespace of this stack"),
])
def test_a_route_backend_is_named_by_phase_and_purpose(backend, problem):
    """Routes name their backend's namespace as <phase>.<purpose>: renaming a namespace keeps its routes."""
    from components.config_schema import SettingsError

    config = stack_config("dev")
    mesh = json.loads(config["somaagenthub:mesh"]) if isinstance(config["somaagenthub:mesh"], str) else config["somaagenthub:mesh"]
    mesh["edge"]["routes"][0]["backend"]["namespace"] = backend
    with pytest.raises(SettingsError) as refused:
        parse({**config, "somaagenthub:mesh": mesh}, "dev")
    assert any(problem in p and "mesh.edge.routes" in p for p in refused.value.problems), refused.value.problems


@pytest.mark.parametrize("stack", STACKS)
def test_the_proxies_fetch_the_signing_keys_inside_the_cluster(plans, stack):
    """The JWKS comes from the identity Service over the mesh: one flow with both ends, no address outside."""
    s, e = edge(stack)
    jwks = e.jwt.jwks_service
    uri = e.jwt.jwks_uri()
    assert uri == f"http://{jwks.service}.{jwks.namespace}.svc.cluster.local:{jwks.port}/.well-known/jwks.json"
    policies = {(p["metadata"]["namespace"], p["metadata"]["name"]): p["spec"] for p in objects(plans[stack], "NetworkPolicy")}
    gateway_ns = s.mesh.namespaces["gateway"].name
    egress = policies[(gateway_ns, "envoy-proxy-to-jwks")]["egress"]
    assert egress == [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": jwks.namespace}},
                               "podSelector": {"matchLabels": {"app.kubernetes.io/name": jwks.service}}}],
                       "ports": [{"protocol": "TCP", "port": jwks.port}]}]
    ingress = policies[(jwks.namespace, f"{jwks.service}-jwks-from-edge")]["ingress"]
    assert ingress[0]["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": gateway_ns}


def test_a_jwks_url_outside_the_cluster_must_be_a_declared_destination():
    from components.config_schema import SettingsError

    config = stack_config("dev")
    mesh = json.loads(config["somaagenthub:mesh"]) if isinstance(config["somaagenthub:mesh"], str) else config["somaagenthub:mesh"]
    del mesh["edge"]["jwt"]["jwksService"]
    mesh["edge"]["jwt"]["jwksUrl"] = "https://login.example.org/keys"
    with pytest.raises(SettingsError) as refused:
        parse({**config, "somaagenthub:mesh": mesh}, "dev")
    assert any("mesh.edge.jwt.jwksUrl: login.example.org:443 is outside the cluster" in p for p in refused.value.problems)
    mesh["istio"]["egress"] = {**mesh["istio"]["egress"], "login": {"hosts": ["login.example.org"], "ports": [443], "protocol": "TLS",
                                         "cidrs": ["198.51.100.0/24"], "namespaces": ["mesh.gateway"], "reason": "federated login"}}
    assert parse({**config, "somaagenthub:mesh": mesh}, "dev").mesh.edge.jwt.jwks_uri() == "https://login.example.org/keys"
