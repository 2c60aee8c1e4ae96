"""Each phase lays its foundation: restricted namespaces, closed networks, quotas sized from settings."""
from __future__ import annotations

import pytest

from components import settings
from tests.helpers import config_with, objects, platform_quotas
from tools.render import render, stack_config

STACKS = ("dev", "staging", "prod")


def loaded(stack: str) -> settings.PlatformSettings:
    return settings.parse(stack_config(stack), stack)


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_enforces_restricted_pod_security(plans, stack):
    """All but the node log agent's, which mounts /var/log/pods (tests/core/test_node_logs.py), the mesh's
    node agents' (istio-cni and ztunnel, tests/mesh/test_istio.py) and, in staging, Chaos Mesh's
    (tests/ops/test_chaos_plan.py)."""
    namespaces = {o["metadata"]["name"]: o for o in objects(plans[stack], "Namespace")}
    assert set(namespaces) == set(loaded(stack).all_namespaces())
    privileged = {loaded(stack).core.namespaces.node_logs.name, loaded(stack).mesh.namespaces["nodeAgents"].name}
    if loaded(stack).ops.chaos is not None:
        privileged.add(loaded(stack).ops.namespaces["chaos"].name)
    for name, ns in namespaces.items():
        labels = ns["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == ("privileged" if name in privileged else "restricted"), name
        assert labels["pod-security.kubernetes.io/audit"] == labels["pod-security.kubernetes.io/warn"] == "restricted", name
        assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.33"
        assert labels["app.kubernetes.io/part-of"] == "somaagenthub"


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_denies_by_default_and_allows_only_dns(plans, stack):
    policies = objects(plans[stack], "NetworkPolicy")
    for ns in loaded(stack).all_namespaces():
        mine = {p["metadata"]["name"]: p["spec"] for p in policies if p["metadata"]["namespace"] == ns}
        deny = mine["default-deny"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        dns = mine["allow-dns-egress"]
        assert dns["policyTypes"] == ["Egress"]
        assert {p["port"] for p in dns["egress"][0]["ports"]} == {53}
        assert dns["egress"][0]["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}


def namespace_settings(s: settings.PlatformSettings) -> dict[str, settings.NamespaceSettings]:
    core = s.core.namespaces
    found = {ns.name: ns for ns in (core.operators, core.secrets, core.data, core.observability, core.node_logs) if ns is not None}
    for phase in ("mesh", "governance", "agents", "ops"):
        found.update({ns.name: ns for ns in getattr(s, phase).namespaces.values()})
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_quota_is_exactly_the_stack_settings(plans, stack):
    s = loaded(stack)
    quotas = platform_quotas(plans[stack])
    expected = {
        name: {
            "requests.cpu": ns.quota.requests_cpu,
            "requests.memory": ns.quota.requests_memory,
            "limits.cpu": ns.quota.limits_cpu,
            "limits.memory": ns.quota.limits_memory,
            "pods": str(ns.quota.pods),
            "requests.storage": ns.quota.storage,
            "persistentvolumeclaims": str(ns.quota.persistent_volume_claims),
        }
        for name, ns in namespace_settings(s).items()
    }
    assert quotas == expected


@pytest.mark.parametrize("stack", STACKS)
def test_every_limit_range_is_exactly_the_container_defaults(plans, stack):
    d = loaded(stack).container_defaults
    expected = [{
        "type": "Container",
        "defaultRequest": {"cpu": d.cpu_request, "memory": d.memory_request},
        "default": {"cpu": d.cpu_limit, "memory": d.memory_limit},
        "max": {"cpu": d.max_cpu, "memory": d.max_memory},
    }]
    ranges = {r["metadata"]["namespace"]: r["spec"]["limits"] for r in objects(plans[stack], "LimitRange")}
    assert set(ranges) == set(loaded(stack).all_namespaces())
    assert all(limits == expected for limits in ranges.values()), ranges


def test_prod_gets_bigger_ceilings_than_dev(plans):
    def data_cpu(stack):
        return next(q["spec"]["hard"]["requests.cpu"] for q in objects(plans[stack], "ResourceQuota") if q["metadata"]["namespace"] == "soma-data")

    assert (data_cpu("dev"), data_cpu("prod")) == ("2", "40")


def test_a_phase_switched_off_is_not_deployed():
    config = config_with("dev", phases={"core": True, "mesh": True, "governance": True, "agents": False, "ops": False})
    plan = render("dev", config=config)
    types = {r["type"] for r in plan["resources"]}
    assert "somaagenthub:phase:Agents" not in types and "somaagenthub:phase:Ops" not in types
    assert "somaagenthub:phase:Governance" in types
    assert "soma-agents" not in {o["metadata"]["name"] for o in objects(plan, "Namespace")}


def test_a_weaker_pod_security_level_needs_a_reason_and_shows_it():

    from components import catalog
    from components.core import telemetry_for
    from components.kit import KitContext, PlatformNamespace
    from tools import mock_runtime
    from tools.render import build_plan

    s = loaded("dev")
    ctx = KitContext.from_settings(s, catalog.load(), telemetry_for(s.core))
    ns = s.core.namespaces.data

    with pytest.raises(ValueError, match="needs a reason"):
        mock_runtime.run(lambda: PlatformNamespace(ns, ctx, pod_security="privileged"), "dev", {})

    recording = mock_runtime.run(
        lambda: PlatformNamespace(ns, ctx, pod_security="privileged", pod_security_reason="chaos daemon needs host PID"),
        "dev", {},
    )
    namespace = objects(build_plan("dev", recording, {}), "Namespace")[0]["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["annotations"] == {"waivers.somaagenthub.io/namespace-pod-security": "chaos daemon needs host PID"}
