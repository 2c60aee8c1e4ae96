"""Argo CD as rendered: HA and no local admin in prod, OIDC from the stack with the client secret from Vault,
the signing keys Argo CD loads matching the ones the projects require, Dex and notifications off, its
destination limited to the agents namespaces, its flows and its scrapes. Only prod runs Argo CD (the hub of the three
waves; dev and staging are its spokes, tests/governance/test_argocd_spoke.py)."""
from __future__ import annotations

import pytest

from components.governance.argocd.openpgp import fingerprint
from tests.governance import standalone
from tests.governance.argocd_plan import ARGOCD_NAMESPACE, HUBS, app_projects
from tests.helpers import objects, pod_specs, stack_document

CHART = "kubernetes:helm.sh/v4:Chart"


def named(plan: dict, kind: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if o["metadata"]["name"] == name and o["metadata"].get("namespace") == ARGOCD_NAMESPACE]
    return found


def chart_values(plan: dict) -> dict:
    (chart,) = [r for r in plan["resources"] if r["type"] == CHART and r["name"] == "argocd"]
    return chart["inputs"]["values"]


def test_prod_is_highly_available(plans):
    plan = plans["prod"]
    replicas = {o["metadata"]["name"]: o["spec"]["replicas"] for o in objects(plan)
                if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"].get("namespace") == ARGOCD_NAMESPACE}
    assert replicas == {"argocd-application-controller": 2, "argocd-repo-server": 2, "argocd-server": 2,
                        "argocd-applicationset-controller": 2, "argocd-redis-ha-server": 3, "argocd-redis-ha-haproxy": 3}
    pdbs = {o["metadata"]["name"] for o in objects(plan, "PodDisruptionBudget") if o["metadata"]["namespace"] == ARGOCD_NAMESPACE}
    assert {"argocd-server", "argocd-repo-server", "argocd-applicationset-controller"} <= pdbs


def test_a_single_cluster_estate_runs_one_of_each_with_a_plain_redis_and_its_local_admin():
    """No stack file runs Argo CD without highAvailability any more (dev is a spoke): the chart values of the
    single-cluster variant (tests/governance/standalone.py), from the values function rather than a render, take one
    plain Redis instead of redis-ha, each part once, the local admin without OIDC, and an in-cluster destination
    limited to the agents namespace."""
    from components import catalog, settings
    from components.core import telemetry_for
    from components.governance.argocd.chart_values import chart_values as values_for
    from components.kit import KitContext

    loaded = settings.parse(standalone.config(), standalone.STACK)
    ctx = KitContext.from_settings(loaded, catalog.load(), telemetry_for(loaded.core))
    values = values_for(loaded.governance.argocd.placed("soma-agents"), loaded.domain, ctx, None)
    assert values["redis"]["enabled"] is True and values["redis-ha"] == {"enabled": False}
    assert {part: values[part]["replicas"] for part in ("controller", "repoServer", "server", "applicationSet")} == {
        "controller": 1, "repoServer": 1, "server": 1, "applicationSet": 1}
    assert values["configs"]["cm"]["admin.enabled"] is True and "oidc.config" not in values["configs"]["cm"]
    assert values["configs"]["clusterCredentials"]["in-cluster"]["namespaces"] == "soma-agents"


@pytest.mark.parametrize("stack", HUBS)
def test_no_dex_no_notifications_and_every_image_by_digest(plans, stack):
    pods = [(o, spec) for o, spec in pod_specs(plans[stack]) if o["metadata"].get("namespace") == ARGOCD_NAMESPACE]
    assert pods
    images = {c["image"] for _, spec in pods for c in spec.get("initContainers", []) + spec["containers"]}
    assert all("@sha256:" in i for i in images), images
    assert not any("dex" in i for i in images)
    assert not [o for o, _ in pods if "notifications" in o["metadata"]["name"] or "dex" in o["metadata"]["name"]]


def test_prod_has_no_local_admin_and_logs_in_through_the_stacks_oidc(plans):
    cm = named(plans["prod"], "ConfigMap", "argocd-cm")["data"]
    sso = stack_document("prod")["somaagenthub:governance"]["argocd"]["sso"]
    assert cm["admin.enabled"] == "false"
    assert f"issuer: {sso['issuer']}\n" in cm["oidc.config"] and f"clientID: {sso['clientId']}\n" in cm["oidc.config"]
    assert "clientSecret: $argocd-oidc-credentials:client-secret\n" in cm["oidc.config"]
    assert all(f"  - {s}\n" in cm["oidc.config"] for s in sso["requestedScopes"])
    rbac = named(plans["prod"], "ConfigMap", "argocd-rbac-cm")["data"]
    assert rbac["policy.csv"].splitlines() == sorted(f"g, {g}, role:{r}" for g, r in sso["groups"].items())
    assert rbac["policy.default"] == ""


def test_the_client_secret_comes_from_vault_with_the_label_argo_cd_reads(plans):
    secret = named(plans["prod"], "ExternalSecret", "argocd-oidc-credentials")["spec"]
    path = stack_document("prod")["somaagenthub:governance"]["argocd"]["sso"]["clientSecretPath"]
    # written relative to the gitops namespace's own Vault folder, the only one its store reads
    assert [d["remoteRef"] for d in secret["data"]] == [{"key": f"soma-gitops/{path}", "property": "client-secret"}]
    assert secret["target"]["template"]["metadata"]["labels"] == {"app.kubernetes.io/part-of": "argocd"}
    for env in ("dev", "staging"):
        cluster = named(plans["prod"], "ExternalSecret", f"argocd-cluster-{env}-credentials")["spec"]
        assert cluster["target"]["template"]["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "cluster"
        # namespaces limits Argo CD to the spoke's agents namespace, all the hub's account there may watch
        assert sorted(d["secretKey"] for d in cluster["data"]) == ["config", "name", "namespaces", "server"]
        assert {d["remoteRef"]["key"] for d in cluster["data"]} == {f"soma-gitops/clusters/{env}"}
    redis = named(plans["prod"], "ExternalSecret", "argocd-redis")["spec"]
    assert [d["secretKey"] for d in redis["data"]] == ["auth"]


@pytest.mark.parametrize("stack", HUBS)
def test_the_keys_argo_cd_loads_are_the_keys_the_projects_require(plans, stack):
    keys = named(plans[stack], "ConfigMap", "argocd-gpg-keys-cm")["data"]
    for key_id, armored in keys.items():
        assert fingerprint(armored).endswith(key_id)
    for name, spec in app_projects(plans[stack]).items():
        assert sorted(k["keyID"] for k in spec["signatureKeys"]) == sorted(keys), name
        assert spec["sourceRepos"] == [stack_document(stack)["somaagenthub:governance"]["argocd"]["repository"]]


@pytest.mark.parametrize("stack", HUBS)
def test_the_in_cluster_destination_is_limited_to_the_agents_namespace(plans, stack):
    values = chart_values(plans[stack])
    assert values["createClusterRoles"] is False
    assert values["configs"]["clusterCredentials"] == {"in-cluster": {
        "server": "https://kubernetes.default.svc", "namespaces": "soma-agents", "clusterResources": False,
        "config": {"tlsClientConfig": {"insecure": False}}}}
    assert named(plans[stack], "ConfigMap", "argocd-cm")["data"]["resource.respectRBAC"] == "normal"


def _selects(selector: dict, labels: dict) -> bool:
    return (all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())
            and all(e["operator"] == "In" and labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions") or []))


@pytest.mark.parametrize("stack", HUBS)
def test_argo_cds_ways_out_are_exactly_the_mesh_declared_ones(plans, stack):
    """Argo CD's destinations outside the cluster are declared once, in mesh.istio.egress for governance.gitops:
    every ipBlock egress of soma-gitops is one of those entries (its CIDRs, its ports, its pods) or the Kubernetes
    API; the Git host is open to the repo-server alone, the issuer to the API server alone, each other cluster's API
    to the controller and the API server alone."""
    from components.governance.argocd.chart_values import COMPONENT_LABELS

    istio = stack_document(stack)["somaagenthub:mesh"]["istio"]
    declared = {f"egress-{name}": d for name, d in istio["egress"].items() if "governance.gitops" in d["namespaces"]}
    api = stack_document(stack)["somaagenthub:core"]["apiServerCidr"]
    policies = {p["metadata"]["name"]: p["spec"] for p in objects(plans[stack], "NetworkPolicy") if p["metadata"]["namespace"] == ARGOCD_NAMESPACE}
    outside = {name: {(peer["ipBlock"]["cidr"], port["port"]) for rule in spec.get("egress", []) for peer in rule.get("to", [])
                      if "ipBlock" in peer for port in rule["ports"]}
               for name, spec in policies.items()}
    assert {name for name, reached in outside.items() if reached and {c for c, _ in reached} != {api}} == set(declared)
    reached_by = {}
    for name, entry in declared.items():
        assert outside[name] == {(c, p) for c in entry["cidrs"] for p in entry["ports"]}, name
        reached_by[name] = {c for c, labels in COMPONENT_LABELS.items() if _selects(policies[name]["podSelector"], labels)}
    assert reached_by["egress-argocd-git"] == {"repoServer"}
    if stack == "prod":
        assert reached_by["egress-argocd-oidc-issuer"] == {"server"}
        assert reached_by["egress-argocd-cluster-dev"] == reached_by["egress-argocd-cluster-staging"] == {"controller", "server"}
        assert {p for name in ("egress-argocd-cluster-dev", "egress-argocd-cluster-staging") for _, p in outside[name]} == {6443}


@pytest.mark.parametrize("stack", HUBS)
def test_every_part_talks_only_through_declared_flows(plans, stack):
    """soma-gitops is default-deny both ways; each in-namespace flow is opened at both ends (server ingress,
    client egress), so dropping either half would cut the flow."""
    policies = {p["metadata"]["name"]: p for p in objects(plans[stack], "NetworkPolicy") if p["metadata"]["namespace"] == ARGOCD_NAMESPACE}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress", "Egress"]
    for client in ("controller", "server", "application-set"):
        assert f"argocd-repo-server-from-{client}" in policies and f"{client}-to-argocd-repo-server" in policies
    redis = "haproxy" if stack == "prod" else "redis"
    to_redis = policies["controller-to-argocd-redis"]["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"]
    assert to_redis == {"app.kubernetes.io/name": f"argocd-{'redis-ha-haproxy' if redis == 'haproxy' else 'redis'}"}


@pytest.mark.parametrize("stack", HUBS)
def test_every_argo_cd_component_is_scraped(plans, stack):
    monitors = {o["metadata"]["name"] for o in objects(plans[stack], "PodMonitor") if o["metadata"]["namespace"] == ARGOCD_NAMESPACE}
    wanted = {"argocd-controller", "argocd-reposerver", "argocd-server", "argocd-applicationset"}
    assert wanted | ({"argocd-redis-ha-haproxy"} if stack == "prod" else set()) == monitors
    scrapes = [p["metadata"]["name"] for p in objects(plans[stack], "NetworkPolicy")
               if p["metadata"]["namespace"] == ARGOCD_NAMESPACE and p["metadata"]["name"].endswith("metrics-scrape")]
    assert len(scrapes) == len(monitors)
