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
    # a chart installs the CRDs it renders (its children) and those of its crds/ folders (which it waits for)
    crd_urns = {r["urn"] for r in crds}
    installing = {r["parent"] for r in crds if r["parent"] in charts}
    installing |= {u for u, chart in charts.items()
                   if any(r["urn"] in chart["dependencies"] and r["name"].startswith(f"{chart['name']}:") for r in crds)}
    assert crd_urns
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


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_a_core_component_moved_to_another_parent_keeps_its_former_urn_through_its_alias(plans, stack):
    """kube-prometheus-stack moved from Core's Observability component to Core itself; without the
    alias the engine would delete the chart (and the monitoring CRDs with it) and create it anew."""
    (chart,) = [r for r in plans[stack]["resources"] if r["type"] == CHART and r["name"] == "kube-prometheus-stack"]
    assert chart["urn"] == f"urn:pulumi:{stack}::somaagenthub::somaagenthub:phase:Core$kubernetes:helm.sh/v4:Chart::kube-prometheus-stack"
    former = (f"urn:pulumi:{stack}::somaagenthub::somaagenthub:phase:Core$somaagenthub:core:Observability"
              f"$kubernetes:helm.sh/v4:Chart::kube-prometheus-stack")
    assert former in alias_urns(chart)


def test_prod_keeps_every_crd_on_delete(plans):
    """Deleting a CRD deletes every object of its kind; in prod the engine keeps them all, whether the
    chart templates them (marked ``helm.sh/resource-policy: keep``) or ships them in ``crds/``."""
    crds = kinds(plans["prod"], "CustomResourceDefinition")
    assert len(crds) >= 60
    assert [r["urn"] for r in crds if not r["options"].get("retainOnDelete") and r["inputs"]["metadata"]["name"] not in UNMARKABLE] == []
    assert all(r["options"].get("protect") for r in crds if r["inputs"]["metadata"]["name"] in UNMARKABLE)


UNMARKABLE = {"clusterimagepolicies.policy.sigstore.dev", "trustroots.policy.sigstore.dev"}
"""policy-controller 0.10.6 templates its two CRDs (templates/crds/, rendered whatever ``installCRDs`` says: no
template reads it) with no annotations, so nothing marks them ``keep`` and installing them beside the chart
would declare them twice. They are protected with the chart instead (a destroy stops), and what they hold, the
ClusterImagePolicies, the program regenerates from platform.lock.yaml (Mesh, signatures)."""


UPSTREAM_KEEPS = (".cnpg.io", ".argoproj.io")
"""CRDs their charts mark ``helm.sh/resource-policy: keep``: CloudNativePG's, and Argo CD's (argo-cd 10.1.1
``crds.keep: true``, templates/crds/: deleting them would delete every Application and AppProject)."""


def test_dev_crds_go_with_their_charts_except_where_upstream_keeps_them(plans):
    kept = {r["inputs"]["metadata"]["name"] for r in kinds(plans["dev"], "CustomResourceDefinition") if r["options"].get("retainOnDelete")}
    assert kept and all(name.endswith(UPSTREAM_KEEPS) for name in kept), sorted(kept)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_crds_of_crds_folders_keep_the_urns_the_provider_would_give_them(plans, stack):
    """The kit installs ``crds/`` CRDs itself, before the chart (``skipCrds`` on it), each aliased to the
    URN the provider gave it as the chart's child, so a stack deployed before keeps every CRD instead
    of replacing it. The set is the one Helm's own engine selects (enabled subcharts included)."""
    from pathlib import Path

    from tools import helm_engine
    from tools.chart_expansion import crd_documents

    plan = plans[stack]
    charts = {r["urn"]: r for r in plan["resources"] if r["type"] == CHART}
    crds = {r["urn"]: r for r in kinds(plan, "CustomResourceDefinition")}
    skipping = [c for c in charts.values() if c["inputs"].get("skipCrds")]
    assert {c["name"] for c in skipping} >= {"kube-prometheus-stack", "strimzi", "clickhouse-operator"}
    for chart in skipping:
        folder = Path(chart["inputs"]["chart"])
        helm_selected = crd_documents(folder, helm_engine.chart_defaults(folder, chart["inputs"]["values"]))
        as_children = {make_urn(chart["urn"], "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
                                f"{chart['name']}:{c['metadata']['name']}") for c in helm_selected}
        # its own crds/ CRDs (named <chart>:<crd>), not the monitoring CRDs every chart waits for
        waited = [crds[u] for u in chart["dependencies"] if u in crds and crds[u]["name"].startswith(f"{chart['name']}:")]
        assert len(waited) == len(helm_selected) > 0, chart["name"]
        assert {u for crd in waited for u in alias_urns(crd)} >= as_children, chart["name"]


def claim_policies(plan: dict) -> dict[str, object]:
    """What happens to each store's volume claims when its owner is deleted, by owner."""
    found: dict[str, object] = {}
    for r in kinds(plan, "StatefulSet"):
        spec = r["inputs"]["spec"]
        if spec.get("volumeClaimTemplates"):
            # unset is Kubernetes' default: Retain on delete and on scale-down
            found[f"StatefulSet/{r['inputs']['metadata']['name']}"] = (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenDeleted", "Retain")
    for kind in ("Prometheus", "Alertmanager"):
        for r in kinds(plan, kind):
            found[f"{kind}/{r['inputs']['metadata']['name']}"] = (r["inputs"]["spec"].get("persistentVolumeClaimRetentionPolicy") or {}).get("whenDeleted")
    for r in kinds(plan, "KafkaNodePool"):
        volumes = r["inputs"]["spec"]["storage"]["volumes"]
        found[f"KafkaNodePool/{r['inputs']['metadata']['name']}"] = "Retain" if all(v["deleteClaim"] is False for v in volumes) else "Delete"
    for kind in ("ClickHouseInstallation", "ClickHouseKeeperInstallation"):
        for r in kinds(plan, kind):
            templates = r["inputs"]["spec"]["templates"]["volumeClaimTemplates"]
            found[f"{kind}/{r['inputs']['metadata']['name']}"] = "Retain" if all(t.get("reclaimPolicy") == "Retain" for t in templates) else "Delete"
    return found


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_volume_claims_outlive_their_owners(plans, stack):
    policies = claim_policies(plans[stack])
    owners = {key.split("/")[0] for key in policies}
    assert {"StatefulSet", "Prometheus", "Alertmanager", "KafkaNodePool", "ClickHouseInstallation"} <= owners
    assert {k: v for k, v in policies.items() if v != "Retain"} == {}
