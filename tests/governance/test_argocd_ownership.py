"""docs/architecture/gitops.md: Pulumi owns the platform, Argo CD the first-party applications' manifests, and
no object is owned by both: nothing the program applies to the cluster falls inside what an AppProject lets Argo
CD manage, and what Argo CD may manage in this cluster is only the application kinds in the agents namespaces.

An object registered with a YAML render provider (``agents.delivery.mode: argocd``) is a file of the applications
repository, not a cluster object of Pulumi's: it is Argo CD's (tools/app_manifests.py ``on_cluster``)."""
from __future__ import annotations

import copy

import pytest

from components.governance.argocd.access import PLURALS, ROLE, WRITE
from components.governance.argocd.projects import APPLICATION_KINDS
from components.settings import IN_CLUSTER
from tests.governance.argocd_plan import HUBS, app_projects, owned_by_both, permitted
from tests.helpers import objects
from tools.app_manifests import on_cluster, rendered_to_files


@pytest.mark.parametrize("stack", HUBS)
def test_no_rendered_object_is_also_argo_cds(plans, stack):
    plan = plans[stack]
    projects = app_projects(plan)
    assert projects, "no AppProject rendered"
    assert owned_by_both(applied(plan), projects) == []


def applied(plan: dict) -> list[dict]:
    """What Pulumi applies to the cluster: every Kubernetes object but those rendered to the applications repository."""
    return [r["inputs"] for r in on_cluster(plan)]


def with_service(plan: dict, rendered: bool) -> dict:
    """The plan plus a gateway Deployment in soma-agents, on a YAML render provider or on the cluster's."""
    provider = {"urn": "urn:pulumi:prod::somaagenthub::pulumi:providers:kubernetes::gateway-manifests",
                "type": "pulumi:providers:kubernetes", "name": "gateway-manifests", "parent": None, "dependencies": [],
                "custom": True, "remote": False, "options": {},
                "inputs": {"renderYamlToDirectory": "../agent-apps/deploy/gateway/prod", "alwaysRender": "true"}}
    deployment = {"urn": "urn:pulumi:prod::somaagenthub::kubernetes:apps/v1:Deployment::soma-agents-gateway",
                  "type": "kubernetes:apps/v1:Deployment", "name": "soma-agents-gateway", "parent": None, "dependencies": [],
                  "custom": True, "remote": False, "options": {"provider": provider["urn"]} if rendered else {},
                  "inputs": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gateway", "namespace": "soma-agents"}}}
    return {**plan, "resources": [*plan["resources"], provider, deployment]}


def test_an_application_object_is_argo_cds_only_when_rendered_to_the_applications_repository(plans):
    """With argocd delivery a service's Deployment is a file Argo CD syncs, inside what apps-prod permits; the same
    Deployment applied by Pulumi (the cluster's provider) is owned by both, and the check says so."""
    plan, projects = plans["prod"], app_projects(plans["prod"])
    as_file = with_service(plan, rendered=True)
    assert owned_by_both(applied(as_file), projects) == []
    (deployment,) = [r["inputs"] for r in rendered_to_files(as_file)]
    assert permitted(projects, "soma-agents", "apps", "Deployment") == ["apps-prod"]
    assert deployment["metadata"]["namespace"] == "soma-agents"
    on_the_cluster = with_service(plan, rendered=False)
    assert rendered_to_files(on_the_cluster) == []
    assert owned_by_both(applied(on_the_cluster), projects) == ["Deployment/soma-agents/gateway (projects ['apps-prod'])"]


@pytest.mark.parametrize("stack", HUBS)
def test_argo_cd_may_manage_only_application_kinds_in_the_agents_namespaces(plans, stack):
    plan = plans[stack]
    agents = {o["metadata"]["name"] for o in objects(plan, "Namespace")} & {"soma-agents"}
    assert agents == {"soma-agents"}
    for name, spec in app_projects(plan).items():
        assert spec["clusterResourceWhitelist"] == [], name
        assert {(w["group"], w["kind"]) for w in spec["namespaceResourceWhitelist"]} == set(APPLICATION_KINDS)
        for destination in spec["destinations"]:
            assert destination["namespace"] == "soma-agents" and "*" not in destination["server"], (name, destination)
    # every platform namespace but the agents' is out of reach, whatever the kind
    for namespace in {o["metadata"]["name"] for o in objects(plan, "Namespace")} - agents:
        assert permitted(app_projects(plan), namespace, "apps", "Deployment") == [], namespace


def test_the_check_catches_an_object_owned_by_both(plans):
    """A Deployment the program rendered into soma-agents, or a project widened to a platform namespace or to
    every kind, is reported: the check can fail."""
    plan = plans["prod"]
    projects = app_projects(plan)
    pulumi_deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "gateway", "namespace": "soma-agents"}}
    assert owned_by_both([pulumi_deployment], projects)
    widened = copy.deepcopy(projects)
    widened["apps-prod"]["destinations"].append({"server": IN_CLUSTER, "namespace": "soma-*"})
    assert any("soma-gitops" in c for c in owned_by_both(objects(plan), widened))
    every_kind = copy.deepcopy(projects)
    every_kind["apps-prod"]["namespaceResourceWhitelist"] = [{"group": "*", "kind": "*"}]
    clashes = owned_by_both(objects(plan), every_kind)
    assert any(c.startswith("NetworkPolicy/soma-agents/") for c in clashes)
    assert any(c.startswith("ExternalSecret/soma-agents/") for c in clashes)
    cluster_wide = copy.deepcopy(projects)
    cluster_wide["apps-prod"]["clusterResourceWhitelist"] = [{"group": "", "kind": "Namespace"}]
    assert any(c.startswith("Namespace//soma-agents") for c in owned_by_both(objects(plan), cluster_wide))


@pytest.mark.parametrize("stack", HUBS)
def test_kubernetes_rbac_grants_argo_cd_what_the_projects_allow_and_no_more(plans, stack):
    """The Role in the agents namespace (bound to the controller and the API server) writes exactly the
    projects' kinds; the chart's ClusterRoles are off, so nothing outside is writable at all."""
    plan = plans[stack]
    assert not [r for r in objects(plan, "ClusterRole") if r["metadata"]["name"].startswith("argocd")]
    (role,) = [r for r in objects(plan, "Role") if r["metadata"]["name"] == ROLE]
    assert role["metadata"]["namespace"] == "soma-agents"
    writable = {(g, res) for rule in role["rules"] if set(rule["verbs"]) & {"create", "update", "patch", "delete"}
                for g in rule["apiGroups"] for res in rule["resources"]}
    assert writable == {(g, PLURALS[k]) for g, k in APPLICATION_KINDS}
    assert all(rule["verbs"] in (WRITE, ["get", "list", "watch"]) for rule in role["rules"])
    (binding,) = [b for b in objects(plan, "RoleBinding") if b["metadata"]["name"] == ROLE]
    assert {(s["name"], s["namespace"]) for s in binding["subjects"]} == {
        ("argocd-application-controller", "soma-gitops"), ("argocd-server", "soma-gitops")}
