"""Istio in ambient mode, judged on the rendered plans (both stacks) and on one variant of dev whose
observability namespace is put in the mesh behind a waypoint, with a traffic override and a declared
egress: that variant has real services and real flows in the mesh, so the layer comparison, the
traffic defaults and the egress declaration are checked on objects, not on empty lists. Waypoints need
istio/proxyv2 pinned, which the real catalog cannot do yet: the variant is rendered with a test-only
catalog entry (``_test_only_proxyv2``), and the real stacks are shown to refuse waypoints without it."""
from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json

import pytest

from components import settings as settings_module
from components.config_schema import SettingsError
from components.settings import WAYPOINT_IMAGE
from tests.helpers import config_with, objects, stack_config, stack_document

STACKS = ("dev", "prod")
ISTIO_IMAGES = {"istio-pilot", "istio-install-cni", "istio-ztunnel"}
MESH_TRANSPORT = "somaagenthub.io/mesh-transport"
OBSERVABILITY = "soma-observability"
OVERRIDDEN = "grafana"


def _mesh_settings(stack: str) -> dict:
    return json.loads(json.dumps(stack_document(stack)["somaagenthub:mesh"]))


WAYPOINT_NAMESPACES = ["governance.governance", "agents.agents", "ops.ops"]
"""Where the stacks will ask for waypoints once istio/proxyv2 is pinned (both stacks say waypoints: [] until then)."""


@contextlib.contextmanager
def _test_only_proxyv2():
    """The catalog with a TEST-ONLY ``istio-proxyv2`` entry, so the waypoint code can be rendered and judged.

    No public source gives a digest for docker.io/istio/proxyv2:1.30.2, so the real catalog has none and
    settings refuse waypoints. This entry is NOT a real image: its digest is the SHA-256 of a label saying
    so, it exists only inside this context, and nothing rendered with it is deployed or gated.
    """
    from components import catalog

    real_load = catalog.load

    def load_with_test_entry(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        fake = catalog.Image(key=WAYPOINT_IMAGE, registry="docker.io", repository="istio/proxyv2", tag="1.30.2",
                             digest=TEST_ONLY_PROXYV2_DIGEST, source="TEST ONLY: not a real digest (tests/mesh/test_istio.py)",
                             signer=catalog.Signer(kind="platform"))
        return catalog.Catalog(images={**loaded.images, WAYPOINT_IMAGE: fake}, charts=loaded.charts, registry=loaded.registry)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(catalog, "load", load_with_test_entry)
        yield


TEST_ONLY_PROXYV2_DIGEST = "sha256:" + hashlib.sha256(b"TEST ONLY: not the digest of any istio/proxyv2 image").hexdigest()


def _variant_mesh() -> dict:
    mesh = _mesh_settings("dev")
    istio = mesh["istio"]
    istio["members"] = [*istio["members"], "core.observability"]
    istio["waypoints"] = [*WAYPOINT_NAMESPACES, "core.observability"]
    istio["overrides"] = {f"{OBSERVABILITY}/{OVERRIDDEN}": {"requestTimeout": "60s",
                                                            "retries": {"attempts": 1, "perTryTimeout": "30s", "retryOn": ["reset"]}}}
    istio["egress"] = {**istio["egress"], "pagerduty": {"hosts": ["events.pagerduty.com"], "ports": [443], "protocol": "TLS",
                                     "cidrs": ["203.0.113.0/24"], "namespaces": ["core.observability"],
                                     "pods": {"app.kubernetes.io/name": "alertmanager"},
                                     "reason": "test declaration: Alertmanager pages through PagerDuty's Events API"}}
    return mesh


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    from tools.render import render

    with _test_only_proxyv2():
        return render("dev", tmp_path_factory.mktemp("mesh-variant"), config=config_with("dev", mesh=_variant_mesh()))


def _by(plan: dict, kind: str, namespace: str | None = None) -> list[dict]:
    return [o for o in objects(plan, kind) if namespace is None or o["metadata"].get("namespace") == namespace]


def _namespaces(plan: dict) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects(plan, "Namespace")}


def _members(plan: dict) -> set[str]:
    return {name for name, ns in _namespaces(plan).items() if ns["metadata"]["labels"].get("istio.io/dataplane-mode") == "ambient"}


# ---- charts, images, namespaces -------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_istio_pods_run_the_catalog_images_by_digest(plans, stack):
    from components import catalog

    lock = catalog.load()
    wanted = {lock.images[k].pulled_from(plans[stack]["settings"]["registry"]).reference for k in ISTIO_IMAGES}
    seen = set()
    for kind in ("Deployment", "DaemonSet"):
        for obj in objects(plans[stack], kind):
            if obj["metadata"].get("namespace") in ("soma-mesh", "soma-mesh-node"):
                seen |= {c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}
    assert seen == wanted


@pytest.mark.parametrize("stack", STACKS)
def test_node_agents_alone_run_in_the_privileged_namespace(plans, stack):
    plan = plans[stack]
    levels = {name: ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] for name, ns in _namespaces(plan).items()}
    assert levels.pop("soma-mesh-node") == "privileged"
    assert levels.pop("soma-node-logs") == "privileged"  # Core's node log agent, not the mesh's
    assert set(levels.values()) == {"restricted"}
    node_workloads = {o["metadata"]["name"] for kind in ("Deployment", "DaemonSet", "StatefulSet") for o in _by(plan, kind, "soma-mesh-node")}
    assert node_workloads == {"istio-cni-node", "ztunnel"}


@pytest.mark.parametrize("stack, replicas", [("staging", 2), ("prod", 3)])
def test_istiod_is_highly_available_in_staging_and_prod(plans, stack, replicas):
    istiod = next(o for o in _by(plans[stack], "Deployment", "soma-mesh") if o["metadata"]["name"] == "istiod")
    assert istiod["spec"]["replicas"] == replicas
    anti = istiod["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert any(p["metadata"]["name"] == "istiod" for p in _by(plans[stack], "PodDisruptionBudget", "soma-mesh"))
    dev = next(o for o in _by(plans["dev"], "Deployment", "soma-mesh") if o["metadata"]["name"] == "istiod")
    assert dev["spec"]["replicas"] == 1


@pytest.mark.parametrize("stack", STACKS)
def test_istio_crds_come_before_the_charts_and_are_kept_in_prod(plans, stack):
    plan = plans[stack]
    crds = [r for r in plan["resources"] if r["type"].endswith("CustomResourceDefinition") and r["name"].startswith("istio-base:")]
    names = {r["inputs"]["metadata"]["name"] for r in crds}
    assert {"peerauthentications.security.istio.io", "authorizationpolicies.security.istio.io",
            "destinationrules.networking.istio.io", "virtualservices.networking.istio.io", "serviceentries.networking.istio.io"} <= names
    charts = [r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v4:Chart" and r["name"] in ("istio-base", "istiod", "istio-cni", "ztunnel")]
    assert len(charts) == 4
    crd_urns = {r["urn"] for r in crds}
    for chart in charts:
        assert crd_urns <= set(chart["dependencies"]), chart["name"]
    base = next(c for c in charts if c["name"] == "istio-base")
    assert sorted(base["inputs"]["values"]["base"]["excludedCRDs"]) == sorted(names)  # the chart renders none of them
    if stack == "prod":
        assert all(r["options"].get("retainOnDelete") and r["options"].get("protect") for r in crds)


# ---- mutual TLS and membership ------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_mtls_is_strict_mesh_wide_and_in_every_member(plans, stack):
    plan = plans[stack]
    pas = objects(plan, "PeerAuthentication")
    root = [p for p in pas if p["metadata"]["namespace"] == "soma-mesh" and not p["spec"].get("selector")]
    assert [p["spec"]["mtls"]["mode"] for p in root] == ["STRICT"]
    members = _members(plan)
    assert members == {"soma-edge", "soma-policy", "soma-governance", "soma-gitops", "soma-cost", "soma-agents", "soma-ops"}
    strict = {p["metadata"]["namespace"] for p in pas if p["spec"]["mtls"]["mode"] == "STRICT" and not p["spec"].get("selector")}
    assert members <= strict
    # the one exception: the observability namespace (not a member) is PERMISSIVE for Prometheus' plaintext callers
    assert [(p["metadata"]["namespace"], p["spec"]["mtls"]["mode"]) for p in pas if p["spec"]["mtls"]["mode"] != "STRICT"] == \
        [(OBSERVABILITY, "PERMISSIVE")]


@pytest.mark.parametrize("stack", STACKS)
def test_every_member_admits_the_mesh_transport(plans, stack):
    plan = plans[stack]
    for namespace in _members(plan):
        transport = {p["metadata"]["name"]: p["spec"] for p in _by(plan, "NetworkPolicy", namespace)
                     if p["metadata"]["labels"].get(MESH_TRANSPORT) == "true"}
        assert {"mesh-hbone-in", "mesh-hbone-out", "mesh-probes"} <= set(transport), namespace
        assert transport["mesh-hbone-in"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 15008}]
        assert transport["mesh-probes"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "169.254.7.127/32"}}]


@pytest.mark.parametrize("stack", STACKS)
def test_istio_is_scraped(plans, stack):
    _assert_istio_scraped(plans[stack], waypoints=False)


def test_istio_and_the_waypoints_are_scraped_when_waypoints_run(variant):
    _assert_istio_scraped(variant, waypoints=True)


def _assert_istio_scraped(plan: dict, waypoints: bool) -> None:
    monitors = {(m["metadata"]["namespace"], m["metadata"]["name"]) for m in objects(plan, "PodMonitor")}
    assert {("soma-mesh", "istiod"), ("soma-mesh-node", "ztunnel")} <= monitors
    waypoint_namespaces = {g["metadata"]["namespace"] for g in objects(plan, "Gateway") if g["spec"]["gatewayClassName"] == "istio-waypoint"}
    assert bool(waypoint_namespaces) == waypoints
    assert {(ns, "waypoint") for ns in waypoint_namespaces} <= monitors
    scrape = next(p for p in _by(plan, "NetworkPolicy", "soma-observability") if p["metadata"]["name"] == "prometheus-scrape-mesh")
    ports = {port["port"] for rule in scrape["spec"]["egress"] for port in rule["ports"]}
    assert ports == ({15014, 15020, 15090} if waypoints else {15014, 15020})


# ---- one list of flows, two layers --------------------------------------------------------------

def _selected(selector: dict, namespaces: dict[str, dict], own: str) -> set[str]:
    """Namespaces a NetworkPolicy namespaceSelector selects, evaluated against the plan's Namespace labels."""
    chosen = set()
    for name, ns in namespaces.items():
        labels = ns["metadata"]["labels"] | {"kubernetes.io/metadata.name": name}
        ok = all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
        for e in selector.get("matchExpressions") or []:
            ok = ok and e["operator"] == "In" and labels.get(e["key"]) in e["values"]
        if ok:
            chosen.add(name)
    return chosen


def _np_flows(plan: dict, namespace: str) -> dict[str, tuple]:
    """Each service flow NetworkPolicy (Ingress, with rules, not mesh transport) as (pods, {(sources, ports)})."""
    namespaces = _namespaces(plan)
    flows = {}
    for policy in _by(plan, "NetworkPolicy", namespace):
        spec = policy["spec"]
        if "Ingress" not in spec.get("policyTypes", []) or not spec.get("ingress") or policy["metadata"]["labels"].get(MESH_TRANSPORT):
            continue
        clauses = set()
        for rule in spec["ingress"]:
            ports = frozenset(str(p["port"]) for p in rule.get("ports", []) if p.get("protocol", "TCP") == "TCP")
            if rule.get("ports") and not ports:
                continue
            sources = set()
            for peer in rule["from"]:
                if "ipBlock" in peer:
                    sources.add(("ip", peer["ipBlock"]["cidr"]))
                elif "namespaceSelector" not in peer:
                    sources.add(("ns", namespace))
                elif peer["namespaceSelector"] == {}:
                    sources.add(("ns", "*"))
                else:
                    sources |= {("ns", n) for n in _selected(peer["namespaceSelector"], namespaces, namespace)}
            clauses.add((frozenset(sources), ports))
        flows[policy["metadata"]["name"]] = ((spec["podSelector"].get("matchLabels") or {}), clauses)
    return flows


def _ap_flows(plan: dict, namespace: str, layer: str, waypoint_principal: str | None) -> dict[str, tuple]:
    flows = {}
    for policy in _by(plan, "AuthorizationPolicy", namespace):
        if policy["metadata"]["labels"].get("somaagenthub.io/flow-layer") != layer:
            continue
        clauses = set()
        for rule in policy["spec"]["rules"]:
            ports = frozenset(p for to in rule.get("to", []) for p in to["operation"]["ports"])
            sources = set()
            for entry in rule["from"]:
                src = entry["source"]
                if src.get("principals") == [waypoint_principal]:
                    continue
                sources |= {("ns", n) for n in src.get("namespaces", [])} | {("ip", c) for c in src.get("ipBlocks", [])}
            clauses.add((frozenset(sources), ports))
        name = policy["metadata"]["name"].removesuffix("-at-waypoint")
        flows[name] = ((policy["spec"].get("selector") or {}).get("matchLabels") or {}, clauses)
    return flows


def _compare_layers(plan: dict, trust_domain: str) -> int:
    compared = 0
    waypoint_namespaces = {g["metadata"]["namespace"] for g in objects(plan, "Gateway") if g["spec"]["gatewayClassName"] == "istio-waypoint"}
    for namespace in sorted(_members(plan)):
        network = _np_flows(plan, namespace)
        principal = f"{trust_domain}/ns/{namespace}/sa/waypoint"
        workload = _ap_flows(plan, namespace, "workload", principal)
        assert workload == network, f"{namespace}: AuthorizationPolicies and NetworkPolicies disagree"
        if namespace in waypoint_namespaces:
            at_waypoint = _ap_flows(plan, namespace, "waypoint", None)
            assert {n: c for n, (_, c) in at_waypoint.items()} == {n: c for n, (_, c) in network.items()}, namespace
            # ztunnel admits the waypoint on exactly the flow's ports, so nothing reaches a pod around the waypoint's rules
            for policy in _by(plan, "AuthorizationPolicy", namespace):
                if policy["metadata"]["labels"].get("somaagenthub.io/flow-layer") == "workload":
                    assert all({"source": {"principals": [principal]}} in rule["from"] for rule in policy["spec"]["rules"])
        defaults = [p for p in _by(plan, "AuthorizationPolicy", namespace) if p["metadata"]["name"] == "allow-nothing"]
        assert [p["spec"] for p in defaults] == [{}], f"{namespace} is not deny-by-default"
        compared += len(network)
    return compared


@pytest.mark.parametrize("stack", STACKS)
def test_authorization_policies_match_the_network_policies_flow_by_flow(plans, stack):
    trust = settings_module.parse(stack_config(stack), stack).mesh.identity.trust_domain
    _compare_layers(plans[stack], trust)


def test_layers_match_with_core_observability_in_the_mesh(variant):
    compared = _compare_layers(variant, "dev.soma.local")
    observability = _np_flows(variant, OBSERVABILITY)
    assert len(observability) >= 8 and compared >= len(observability)  # the collector, Loki, Prometheus, Tempo... flows


def test_a_flow_without_its_authorization_policy_is_caught(variant):
    """The comparison is not vacuous: drop one AuthorizationPolicy and it fails."""
    plan = json.loads(json.dumps(variant))
    victim = next(r for r in plan["resources"] if r["type"].endswith("AuthorizationPolicy")
                  and r["inputs"]["metadata"]["namespace"] == OBSERVABILITY and r["inputs"]["metadata"]["name"] == "loki-from-collector")
    plan["resources"].remove(victim)
    with pytest.raises(AssertionError):
        _compare_layers(plan, "dev.soma.local")


# ---- traffic defaults ---------------------------------------------------------------------------

def _covering(host: str, rules: list[dict], key: str) -> dict:
    exact = [r for r in rules if host in (r["spec"][key] if isinstance(r["spec"][key], list) else [r["spec"][key]])]
    if exact:
        return exact[0]
    wild = [r for r in rules if any(fnmatch.fnmatch(host, h) for h in (r["spec"][key] if isinstance(r["spec"][key], list) else [r["spec"][key]]))]
    assert wild, f"{host} has no {key} rule"
    return wild[0]


def test_every_waypoint_service_gets_the_defaults_or_its_override(variant):
    with _test_only_proxyv2():
        traffic = settings_module.parse(config_with("dev", mesh=_variant_mesh()), "dev").mesh.istio.traffic
    waypoint_namespaces = {g["metadata"]["namespace"] for g in objects(variant, "Gateway") if g["spec"]["gatewayClassName"] == "istio-waypoint"}
    assert OBSERVABILITY in waypoint_namespaces
    labels = _namespaces(variant)[OBSERVABILITY]["metadata"]["labels"]
    assert labels["istio.io/use-waypoint"] == "waypoint"
    services = [s for s in objects(variant, "Service") if s["metadata"].get("namespace") in waypoint_namespaces]
    assert len(services) >= 8
    for service in services:
        ns, name = service["metadata"]["namespace"], service["metadata"]["name"]
        host = f"{name}.{ns}.svc.cluster.local"
        dr = _covering(host, _by(variant, "DestinationRule", ns), "host")
        vs = _covering(host, _by(variant, "VirtualService", ns), "hosts")
        route = vs["spec"]["http"][0]
        pool = dr["spec"]["trafficPolicy"]["connectionPool"]
        assert pool["tcp"]["maxConnections"] == traffic.connection_pool.max_connections
        assert dr["spec"]["trafficPolicy"]["outlierDetection"]["consecutive5xxErrors"] == traffic.outlier_detection.consecutive_5xx_errors
        if name == OVERRIDDEN:
            assert (route["timeout"], route["retries"]) == ("60s", {"attempts": 1, "perTryTimeout": "30s", "retryOn": "reset"})
        else:
            assert route["timeout"] == traffic.request_timeout
            assert route["retries"] == {"attempts": traffic.retries.attempts, "perTryTimeout": traffic.retries.per_try_timeout,
                                        "retryOn": ",".join(traffic.retries.retry_on)}


def _problems(mesh: dict) -> str:
    with pytest.raises(SettingsError) as err:
        settings_module.parse(config_with("dev", mesh=mesh), "dev")
    return str(err.value)


@pytest.mark.parametrize("stack", STACKS)
def test_waypoints_are_refused_while_proxyv2_is_not_pinned(stack):
    """A waypoint would run istiod's hub+tag image, which admission refuses in prod: the settings say so, naming the key."""
    from components import catalog

    assert WAYPOINT_IMAGE not in catalog.load().images, "proxyv2 is pinned now: turn the waypoints on and drop this test"
    mesh = _mesh_settings(stack)
    assert mesh["istio"]["waypoints"] == []
    mesh["istio"]["waypoints"] = ["agents.agents"]
    with pytest.raises(SettingsError) as err:
        settings_module.parse(config_with(stack, mesh=mesh), stack)
    text = str(err.value)
    assert "mesh.istio.waypoints" in text and f"no '{WAYPOINT_IMAGE}' entry" in text and "admission refuses" in text


def test_with_proxyv2_pinned_istiod_starts_waypoints_from_its_digest(variant):
    """istiod's injection values carry the catalog reference whole (files/waypoint.yaml uses a value with "/" as is)."""
    (injector,) = [c for c in _by(variant, "ConfigMap", "soma-mesh") if c["metadata"]["name"].startswith("istio-sidecar-injector")]
    values = json.loads(injector["data"]["values"])
    assert values["global"]["proxy"]["image"] == f"docker.io/istio/proxyv2:1.30.2@{TEST_ONLY_PROXYV2_DIGEST}"


def test_a_negative_timeout_is_refused_naming_its_key():
    mesh = _mesh_settings("dev")
    mesh["istio"]["traffic"]["requestTimeout"] = "-5s"
    assert "mesh.istio.traffic.requestTimeout" in _problems(mesh)


def test_a_zero_per_try_timeout_and_an_unknown_retry_condition_are_refused():
    mesh = _mesh_settings("dev")
    mesh["istio"]["traffic"]["retries"] = {"attempts": 2, "perTryTimeout": "0s", "retryOn": ["sometimes"]}
    text = _problems(mesh)
    assert "mesh.istio.traffic.retries.perTryTimeout: must be longer than 0" in text
    assert "mesh.istio.traffic.retries.retryOn: unknown condition" in text


def test_an_override_for_an_unknown_service_is_refused_naming_it():
    mesh = _mesh_settings("dev")
    mesh["istio"]["overrides"] = {"soma-nowhere/api": {"requestTimeout": "5s"}}
    assert "mesh.istio.overrides.soma-nowhere/api: unknown service" in _problems(mesh)


def test_the_node_agents_namespace_cannot_join_the_mesh():
    mesh = _mesh_settings("dev")
    mesh["istio"]["members"] = [*mesh["istio"]["members"], "mesh.nodeAgents"]
    assert "mesh.istio.members: the control plane and node agent namespaces" in _problems(mesh)


# ---- registry-only egress -----------------------------------------------------------------------

def test_a_declared_destination_yields_its_service_entry_and_its_egress_policy(variant):
    entries = [e for e in objects(variant, "ServiceEntry") if e["metadata"]["name"] == "egress-pagerduty"]
    assert len(entries) == 1
    spec = entries[0]["spec"]
    assert spec["hosts"] == ["events.pagerduty.com"] and spec["location"] == "MESH_EXTERNAL"
    assert spec["exportTo"] == [OBSERVABILITY] and [p["number"] for p in spec["ports"]] == [443]
    policy = next(p for p in _by(variant, "NetworkPolicy", OBSERVABILITY) if p["metadata"]["name"] == "egress-pagerduty")
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}
    assert policy["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"protocol": "TCP", "port": 443}]}]


def _resource(plan: dict, kind: str, namespace: str | None, name: str) -> dict:
    (found,) = [r for r in plan["resources"] if r["type"].endswith(f":{kind}") and r["inputs"].get("metadata", {}).get("namespace") == namespace
                and r["inputs"].get("metadata", {}).get("name") == name]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_a_later_phases_declared_egress_waits_for_its_namespace(plans, stack):
    """On an empty cluster a first ``pulumi up`` must not create an egress NetworkPolicy before its namespace:
    soma-gitops (Governance, built after the Mesh phase) gets the policy of each destination declared for it,
    and the plan has it depend on the soma-gitops Namespace. Its ServiceEntry stays with the Mesh phase."""
    plan = plans[stack]
    s = settings_module.parse(stack_config(stack), stack)
    for_gitops = sorted(name for name, d in s.mesh.istio.egress.items() if "governance.gitops" in d.namespaces)
    # only the hub (prod) runs Argo CD; a spoke's soma-gitops holds the hub's account and reaches nothing outside
    assert ("argocd-git" in for_gitops) == (s.governance.argocd is not None)
    assert stack != "prod" or {"argocd-oidc-issuer", "argocd-cluster-dev", "argocd-cluster-staging"} <= set(for_gitops)
    namespace = _resource(plan, "Namespace", None, "soma-gitops")
    for name in for_gitops:
        policy = _resource(plan, "NetworkPolicy", "soma-gitops", f"egress-{name}")
        assert namespace["urn"] in policy["dependencies"], name
        assert "somaagenthub:mesh:Istio$" in policy["urn"], "made by the mesh, from the one declaration"
        entry = _resource(plan, "ServiceEntry", "soma-mesh", f"egress-{name}")
        assert entry["inputs"]["spec"]["exportTo"] == ["soma-gitops"]
        assert namespace["urn"] not in entry["dependencies"]


def test_a_core_namespaces_declared_egress_waits_for_its_namespace_too(variant):
    policy = _resource(variant, "NetworkPolicy", OBSERVABILITY, "egress-pagerduty")
    assert _resource(variant, "Namespace", None, OBSERVABILITY)["urn"] in policy["dependencies"]
    assert policy["urn"].endswith("somaagenthub:mesh:Istio$kubernetes:networking.k8s.io/v1:NetworkPolicy::soma-observability-egress-pagerduty")


@pytest.mark.parametrize("stack", STACKS)
def test_no_in_mesh_namespace_reaches_outside_the_cluster_undeclared(plans, stack):
    """Every ipBlock egress from an in-mesh namespace is a declared destination, or the cluster's own API
    server (core.apiServerCidr: controllers such as Envoy Gateway's watch it; it is not outside the cluster)."""
    plan = plans[stack]
    s = settings_module.parse(stack_config(stack), stack)
    declared = {c for e in s.mesh.istio.egress.values() for c in e.cidrs} | {s.core.api_server_cidr}
    for namespace in _members(plan):
        for policy in _by(plan, "NetworkPolicy", namespace):
            for rule in policy["spec"].get("egress", []):
                for peer in rule["to"]:
                    if "ipBlock" in peer:
                        assert peer["ipBlock"]["cidr"] in declared, (namespace, policy["metadata"]["name"])


def test_egress_naming_an_unknown_namespace_is_refused():
    mesh = _mesh_settings("dev")
    mesh["istio"]["egress"] = {"x": {"hosts": ["a.example.com"], "ports": [443], "protocol": "TLS", "cidrs": ["203.0.113.0/24"],
                                     "namespaces": ["core.nowhere"], "reason": "test"}}
    assert "mesh.istio.egress.x.namespaces[0]: unknown namespace key 'core.nowhere'" in _problems(mesh)
