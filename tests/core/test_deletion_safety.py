"""Nothing stateful is lost to a rename, a parent move or a destroy on the wrong stack: in prod the
engine receives ``protect`` for every store and every chart that installs CRDs (their children
inherit it), and a moved resource keeps its URN through an alias."""
from __future__ import annotations

import pytest

from components import settings as platform_settings
from tools.mock_runtime import make_urn
from tools.render import stack_config

CHART = "kubernetes:helm.sh/v4:Chart"
STATEFUL_KINDS = {
    "Cluster": "PostgreSQL (CloudNativePG)",
    "Kafka": "Kafka",
    "KafkaNodePool": "Kafka node pools",
    "ClickHouseInstallation": "ClickHouse",
    "ClickHouseKeeperInstallation": "ClickHouse Keeper",
}
STATEFUL_SETS = {"minio": "MinIO", "qdrant": "Qdrant", "vault": "Vault"}


def kinds(plan: dict, kind: str) -> list[dict]:
    return [r for r in plan["resources"] if r["inputs"].get("kind") == kind]


def test_prod_protects_every_store(plans):
    prod = plans["prod"]
    unprotected = [f"{what}: {r['urn']}" for kind, what in STATEFUL_KINDS.items() for r in kinds(prod, kind)
                   if not r["options"].get("protect")]
    assert all(kinds(prod, kind) for kind in STATEFUL_KINDS), "a store kind is missing from the prod plan"
    stateful_sets = {r["inputs"]["metadata"]["name"]: r for r in kinds(prod, "StatefulSet")}
    for name, what in STATEFUL_SETS.items():
        assert name in stateful_sets, f"{what} StatefulSet is missing"
        if not stateful_sets[name]["options"].get("protect"):
            unprotected.append(f"{what}: {stateful_sets[name]['urn']}")
    assert unprotected == []


def test_prod_protects_every_chart_that_installs_crds_and_every_crd(plans):
    prod = plans["prod"]
    charts = {r["urn"]: r for r in prod["resources"] if r["type"] == CHART}
    crds = kinds(prod, "CustomResourceDefinition")
    installing = {r["parent"] for r in crds if r["parent"] in charts}
    assert len(installing) >= 5, "kube-prometheus-stack, ESO, CloudNativePG, Strimzi and Altinity install CRDs"
    assert [u for u in installing if not charts[u]["options"].get("protect")] == []
    assert [r["urn"] for r in crds if not r["options"].get("protect")] == []


def test_dev_protects_nothing_so_it_can_be_torn_down(plans):
    assert [r["urn"] for r in plans["dev"]["resources"] if r["options"].get("protect")] == []


def test_a_mandatory_stack_without_deletion_protection_is_refused():
    config = {**stack_config("prod"), "somaagenthub:deletionProtection": "false"}
    with pytest.raises(platform_settings.SettingsError, match="deletionProtection: policyEnforcement is mandatory"):
        platform_settings.parse(config, "prod")


def alias_urns(resource: dict) -> list[str]:
    """The URNs a resource's aliases name, as the engine resolves them (unset fields: the resource's own)."""
    found = []
    for alias in resource["options"].get("aliases", []):
        spec = alias.get("spec", {})
        name, type_ = spec.get("name") or resource["name"], spec.get("type") or resource["type"]
        parent = spec.get("parentUrn") or resource["parent"]
        found.append(make_urn(parent, type_, name))
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_core_component_moved_to_another_parent_keeps_its_former_urn_through_its_alias(plans, stack):
    """kube-prometheus-stack moved from Core's Observability component to Core itself; without the
    alias the engine would delete the chart (and the monitoring CRDs with it) and create it anew."""
    (chart,) = [r for r in plans[stack]["resources"] if r["type"] == CHART and r["name"] == "kube-prometheus-stack"]
    assert chart["urn"] == f"urn:pulumi:{stack}::somaagenthub::somaagenthub:phase:Core$kubernetes:helm.sh/v4:Chart::kube-prometheus-stack"
    former = (f"urn:pulumi:{stack}::somaagenthub::somaagenthub:phase:Core$somaagenthub:core:Observability"
              f"$kubernetes:helm.sh/v4:Chart::kube-prometheus-stack")
    assert former in alias_urns(chart)
