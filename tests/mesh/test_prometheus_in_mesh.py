"""Prometheus scrapes in-mesh pods under STRICT mTLS (components/mesh/istio/scraper.py), judged on both
rendered plans: every in-mesh pod a ServiceMonitor or PodMonitor points at is reachable by Prometheus
under both layers, the NetworkPolicies (HBONE 15008 out of Prometheus and into the pod: ztunnel carries
the scrape there, whatever the metrics port) and the AuthorizationPolicies (an ALLOW at the pod for the
observability namespace on the metrics port); and the Prometheus pods carry the ambient label, their
namespace is PERMISSIVE for its out-of-mesh callers."""
from __future__ import annotations

import pytest

from components.mesh.edge import proxy
from tests.helpers import objects

STACKS = ("dev", "prod")
HBONE = 15008
AMBIENT = {"istio.io/dataplane-mode": "ambient"}
OPERATOR_MADE = {("soma-edge", "envoy-proxy"): proxy.STATS_PORT}
"""Monitors of pods an operator creates (not in the plan): their metrics port, as the program declares it
(Envoy Gateway's proxy ``metrics`` container port, components/mesh/edge/proxy.py)."""


def _in(kind: str, plan: dict, namespace: str) -> list[dict]:
    return [o for o in objects(plan, kind) if o["metadata"].get("namespace") == namespace]


def _members(plan: dict) -> set[str]:
    return {n["metadata"]["name"] for n in objects(plan, "Namespace") if n["metadata"]["labels"].get("istio.io/dataplane-mode") == "ambient"}


def _namespace_labels(plan: dict) -> dict[str, dict]:
    return {n["metadata"]["name"]: {**n["metadata"].get("labels", {}), "kubernetes.io/metadata.name": n["metadata"]["name"]}
            for n in objects(plan, "Namespace")}


def _matches(selector: dict | None, labels: dict) -> bool:
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
        if e["operator"] not in ("In",):
            raise AssertionError(f"selector operator {e['operator']} not understood by this test")
    return True


def _pod_templates(plan: dict, namespace: str) -> list[dict]:
    return [w["spec"]["template"] for kind in ("Deployment", "StatefulSet", "DaemonSet") for w in _in(kind, plan, namespace)]


def _container_port(templates: list[dict], name: str) -> int | None:
    for template in templates:
        for container in template["spec"]["containers"]:
            for port in container.get("ports", []):
                if port.get("name") == name:
                    return port["containerPort"]
    return None


def _targets(plan: dict, namespace: str) -> list[tuple[str, dict, int]]:
    """(monitor, pod labels, metrics port) for every scrape target of every monitor in ``namespace``."""
    found = []
    templates = _pod_templates(plan, namespace)
    for monitor in _in("PodMonitor", plan, namespace):
        name, selector = monitor["metadata"]["name"], monitor["spec"]["selector"]
        pods = [t for t in templates if _matches(selector, t["metadata"]["labels"])]
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            if pods:
                found += [(name, t["metadata"]["labels"], _container_port([t], endpoint["port"])) for t in pods]
            else:
                assert (namespace, name) in OPERATOR_MADE, f"{namespace}/{name}: selects no pod of the plan"
                found.append((name, selector["matchLabels"], OPERATOR_MADE[(namespace, name)]))
    for monitor in _in("ServiceMonitor", plan, namespace):
        name = monitor["metadata"]["name"]
        services = [s for s in _in("Service", plan, namespace) if _matches(monitor["spec"]["selector"], s["metadata"].get("labels", {}))]
        assert services, f"{namespace}/{name}: selects no Service of the plan"
        for endpoint in monitor["spec"]["endpoints"]:
            # Prometheus scrapes the selected Services that have the named port; the others yield no target
            serving = [(s, p) for s in services for p in s["spec"]["ports"] if p.get("name") == endpoint["port"]]
            assert serving, f"{namespace}/{name}: no selected Service has a port named {endpoint['port']}"
            for service, port in serving:
                pods = [t for t in templates if _matches({"matchLabels": service["spec"]["selector"]}, t["metadata"]["labels"])]
                assert pods, f"{namespace}/{service['metadata']['name']}: selects no pod of the plan"
                target = port.get("targetPort", port["port"])
                found += [(name, t["metadata"]["labels"], target if isinstance(target, int) else _container_port([t], target)) for t in pods]
    return found


def _prometheus(plan: dict) -> tuple[str, dict]:
    (server,) = objects(plan, "Prometheus")
    labels = {"app.kubernetes.io/name": "prometheus", **server["spec"].get("podMetadata", {}).get("labels", {})}
    return server["metadata"]["namespace"], labels


def _network_admits(plan: dict, direction: str, namespace: str, pod: dict, peer_ns: str, peer_pod: dict, port: int) -> bool:
    namespaces = _namespace_labels(plan)
    for policy in _in("NetworkPolicy", plan, namespace):
        spec = policy["spec"]
        if direction not in spec.get("policyTypes", []) or not _matches(spec["podSelector"], pod):
            continue
        for rule in spec.get("ingress" if direction == "Ingress" else "egress", []):
            ports = rule.get("ports")
            if ports and not any(p.get("port") == port for p in ports):
                continue
            for peer in rule["from" if direction == "Ingress" else "to"]:
                if "ipBlock" in peer:
                    continue
                ns_ok = (_matches(peer["namespaceSelector"], namespaces[peer_ns]) if "namespaceSelector" in peer else peer_ns == namespace)
                if ns_ok and _matches(peer.get("podSelector"), peer_pod):
                    return True
    return False


def _authorization_admits(plan: dict, namespace: str, pod: dict, source_ns: str, port: int) -> bool:
    policies = _in("AuthorizationPolicy", plan, namespace)
    for policy in policies:  # DENY first, as Istio evaluates them; a source with no listed principal is any principal
        spec = policy["spec"]
        if spec.get("action") != "DENY" or not _matches(spec.get("selector"), pod):
            continue
        for rule in spec.get("rules", []):
            assert all(set(entry["source"]) <= {"namespaces", "notPrincipals"} for entry in rule.get("from", [])), rule
            sources = any(source_ns in entry["source"].get("namespaces", []) for entry in rule.get("from", []))
            if sources and any(str(port) in to["operation"].get("ports", []) for to in rule.get("to", [])):
                return False
    for policy in policies:
        spec = policy["spec"]
        if spec.get("action", "ALLOW") != "ALLOW" or "targetRefs" in spec or not _matches(spec.get("selector"), pod):
            continue
        for rule in spec.get("rules", []):
            sources_ok = any(source_ns in entry["source"].get("namespaces", []) for entry in rule.get("from", []))
            ports_ok = any(str(port) in to["operation"].get("ports", []) for to in rule.get("to", []))
            if sources_ok and ports_ok:
                return True
    return False


@pytest.mark.parametrize("stack", STACKS)
def test_every_monitored_in_mesh_pod_is_reachable_by_prometheus_under_both_layers(plans, stack):
    plan = plans[stack]
    prometheus_ns, prometheus_pod = _prometheus(plan)
    checked = 0
    for namespace in sorted(_members(plan)):
        for monitor, pod, port in _targets(plan, namespace):
            where = f"{stack}: {namespace}/{monitor} ({pod}, port {port})"
            assert port, f"{where}: metrics port not resolved"
            assert _network_admits(plan, "Egress", prometheus_ns, prometheus_pod, namespace, pod, HBONE), f"{where}: Prometheus may not send HBONE"
            assert _network_admits(plan, "Ingress", namespace, pod, prometheus_ns, prometheus_pod, HBONE), f"{where}: the pod refuses HBONE from Prometheus"
            assert _authorization_admits(plan, namespace, pod, prometheus_ns, port), f"{where}: no AuthorizationPolicy admits Prometheus"
            checked += 1
    assert checked >= 3, "OPA, the Envoy Gateway controller and its proxies at least"


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_pods_are_in_the_mesh_and_their_namespace_is_permissive(plans, stack):
    plan = plans[stack]
    namespace, pod = _prometheus(plan)
    assert namespace not in _members(plan), "the namespace stays out of the mesh: only Prometheus joins"
    assert AMBIENT.items() <= pod.items(), "Prometheus' pods carry istio.io/dataplane-mode: ambient (spec.podMetadata.labels)"
    modes = {p["metadata"]["name"]: p["spec"]["mtls"]["mode"] for p in _in("PeerAuthentication", plan, namespace)}
    assert modes == {"permissive-mtls": "PERMISSIVE"}, "Grafana, the collector and Alertmanager call Prometheus in plaintext"
    # the kubelet's probes of an ambient pod come from the probe SNAT address
    assert any(rule["from"] == [{"ipBlock": {"cidr": "169.254.7.127/32"}}]
               for p in _in("NetworkPolicy", plan, namespace) if _matches(p["spec"]["podSelector"], pod)
               for rule in p["spec"].get("ingress", []))


def test_the_check_fails_without_the_hbone_path(plans):
    """Not vacuous: take away Prometheus' HBONE egress and the first check fails."""
    import json

    plan = json.loads(json.dumps(plans["dev"]))
    plan["resources"] = [r for r in plan["resources"] if not (r["type"].endswith("NetworkPolicy")
                                                              and r["inputs"]["metadata"]["name"] == "prometheus-hbone-out")]
    with pytest.raises(AssertionError, match="may not send HBONE"):
        test_every_monitored_in_mesh_pod_is_reachable_by_prometheus_under_both_layers({"dev": plan}, "dev")
