"""A spoke cluster (dev, staging: their waves are driven by prod's Argo CD, the hub) runs no Argo CD and grants the
hub's: the account ``argocd-hub`` in its gitops namespace, a long-lived token for it that an administrator copies
into the hub's Vault, and the same ``argocd-deployer`` Role as the hub's own controller holds, in each agents
namespace (docs/architecture/gitops.md, "Which clusters"; docs/runbooks/governance.md, "Registering a spoke
cluster"). Read from the session's renders of the stock stacks."""
from __future__ import annotations

import copy

import pytest

from components.governance.argocd.access import HUB_ACCOUNT, HUB_TOKEN, PLURALS, ROLE, role_rules
from components.governance.argocd.projects import APPLICATION_KINDS
from tests.governance.argocd_plan import ARGOCD_NAMESPACE, HUBS, SPOKES
from tests.helpers import objects
from tools.rbac_review import Subject, can, grants

HUB = Subject(ARGOCD_NAMESPACE, HUB_ACCOUNT)
WRITES = ("create", "update", "patch", "delete")


def named(plan: dict, kind: str, namespace: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if o["metadata"].get("namespace") == namespace and o["metadata"]["name"] == name]
    return found


def resource(plan: dict, kind: str, name: str) -> dict:
    (found,) = [r for r in plan["resources"] if r["inputs"].get("kind") == kind and r["inputs"]["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("stack", SPOKES)
def test_a_spoke_runs_no_argo_cd(plans, stack):
    """Nothing of Argo CD's own is installed: no chart, no project, no ApplicationSet, no pod in soma-gitops."""
    plan = plans[stack]
    assert not [r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v4:Chart" and r["name"] == "argocd"]
    assert not objects(plan, "AppProject") and not objects(plan, "ApplicationSet")
    assert not [o for o in objects(plan) if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"].get("namespace") == ARGOCD_NAMESPACE]


@pytest.mark.parametrize("stack", SPOKES)
def test_the_hubs_account_and_its_long_lived_token(plans, stack):
    plan = plans[stack]
    account = named(plan, "ServiceAccount", ARGOCD_NAMESPACE, HUB_ACCOUNT)
    assert account["automountServiceAccountToken"] is False, "no pod runs as the hub"
    token = named(plan, "Secret", ARGOCD_NAMESPACE, HUB_TOKEN)
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": HUB_ACCOUNT}
    assert "data" not in token and "stringData" not in token, "the token controller fills it; the program writes nothing"
    # the token controller fills a token only for an account that exists: the Secret waits for it
    assert resource(plan, "ServiceAccount", HUB_ACCOUNT)["urn"] in resource(plan, "Secret", HUB_TOKEN)["dependencies"]


@pytest.mark.parametrize("stack", SPOKES)
def test_the_hub_may_deploy_the_application_kinds_into_the_agents_namespace_and_nothing_else(plans, stack):
    plan = plans[stack]
    for group, kind in APPLICATION_KINDS:
        for verb in ("get", "watch", *WRITES):
            assert can(plan, HUB, verb, group, PLURALS[kind], "soma-agents"), (verb, kind)
    assert can(plan, HUB, "list", "", "pods", "soma-agents") and not can(plan, HUB, "create", "", "pods", "soma-agents")
    for namespace in ("soma-data", "soma-gitops", "kube-system"):
        assert not can(plan, HUB, "create", "apps", "deployments", namespace), namespace
    for namespace in ("soma-agents", "soma-gitops"):
        assert not can(plan, HUB, "get", "", "secrets", namespace), f"the hub reads no Secret in {namespace}, its own token included"
    assert {g.via for g in grants(plan, HUB)} == {f"RoleBinding/soma-agents/{ROLE}"}
    assert all(g.namespace == "soma-agents" for g in grants(plan, HUB)), "nothing cluster-wide"


@pytest.mark.parametrize("stack", SPOKES)
def test_the_spokes_role_is_the_hubs_one_definition(plans, stack):
    """The hub's own controller holds the same Role in prod's agents namespace as the hub's account in a spoke."""
    spoke = named(plans[stack], "Role", "soma-agents", ROLE)["rules"]
    (hub,) = [named(plans[h], "Role", "soma-agents", ROLE)["rules"] for h in HUBS]
    assert spoke == hub == role_rules()
    binding = named(plans[stack], "RoleBinding", "soma-agents", ROLE)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": ARGOCD_NAMESPACE}]


def test_the_check_sees_a_hub_given_too_much(plans):
    """Bind the hub's account to a cluster-wide role, or to the Role in another namespace: the review says so."""
    plan = copy.deepcopy(plans["dev"])
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "oops"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin-ish"},
               "subjects": [{"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": ARGOCD_NAMESPACE}]}
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cluster-admin-ish"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}
    plan["resources"] += [{"inputs": binding}, {"inputs": role}]
    assert [g.via for g in can(plan, HUB, "get", "", "secrets", "soma-gitops")] == ["ClusterRoleBinding/oops"]
    assert {g.via for g in grants(plan, HUB)} != {f"RoleBinding/soma-agents/{ROLE}"}
