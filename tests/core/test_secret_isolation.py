"""A workload reads only its own secrets, even beside another consumer in the same namespace.

Each consumer has its own store, which logs into Vault as the consumer's service account under a
role bound to that account alone, whose policy reaches the consumer's folder alone
(tests/core/test_vault_access.py shows the policies on OpenBao). What is left for a second
workload in the same namespace is Kubernetes itself: naming the first one's store in an
ExternalSecret of its own, reading the first one's synced Secret, running a pod that mounts it, or
minting a token for the first one's service account. These tests evaluate the plan's RBAC
(tools/rbac_review.py) and show that no service account of a shared namespace can do any of it,
and that no namespace editor can either.
"""
from __future__ import annotations

import copy

import pytest

from components import settings as platform_settings
from components.core.secrets.vault_access import SNAPSHOT_POLICY
from tools.rbac_review import Subject, can, service_accounts
from tools.render import stack_config

STORE = "ClusterSecretStore"
REACHING = [
    ("create", "external-secrets.io", "externalsecrets", "name another consumer's store in an ExternalSecret"),
    ("update", "external-secrets.io", "externalsecrets", "repoint an existing ExternalSecret"),
    ("patch", "external-secrets.io", "externalsecrets", "repoint an existing ExternalSecret"),
    ("create", "external-secrets.io", "secretstores", "define a store of its own"),
    ("update", "external-secrets.io", "clustersecretstores", "widen a store's namespaces or change its account"),
    ("get", "", "secrets", "read another consumer's synced Secret"),
    ("list", "", "secrets", "read another consumer's synced Secret"),
    ("create", "", "pods", "run a pod that mounts another consumer's Secret"),
    ("create", "apps", "deployments", "run a pod that mounts another consumer's Secret"),
    ("create", "", "serviceaccounts/token", "mint a token for another consumer's account and log into Vault as it"),
]


OPERATORS_READING_SECRETS = {
    ("soma-observability", "kps-operator"):
        "The Prometheus operator reads the Secrets that Prometheus, Alertmanager and monitor objects name "
        "(scrape credentials, TLS, Alertmanager configuration) in every namespace it watches: an operator, "
        "not a workload, and its grant is allow-listed by the least-privilege-rbac rule with this reason.",
    ("soma-gitops", "argocd-application-controller"):
        "Argo CD's controller reads its own Secrets in its namespace (argocd-secret, the Redis password, the "
        "cluster secrets of the promotion waves): every store of soma-gitops serves Argo CD alone "
        "(components/governance/argocd/), the namespace holds nothing else.",
    ("soma-gitops", "argocd-applicationset-controller"):
        "Argo CD's ApplicationSet controller reads the cluster and repository Secrets of its namespace (its "
        "generators' destinations); every store of soma-gitops serves Argo CD alone.",
    ("soma-gitops", "argocd-server"):
        "Argo CD's API server reads and writes its own Secrets (argocd-secret, the OIDC client secret, the "
        "repository and cluster secrets); every store of soma-gitops serves Argo CD alone, and its Role is "
        "allow-listed by the least-privilege-rbac rule with this reason.",
}
"""Service accounts of shared namespaces that may read Secrets there, each with the reason; anything
else that can is a finding."""


def objects(plan: dict, kind: str) -> list[dict]:
    return [r["inputs"] for r in plan["resources"] if r["inputs"].get("kind") == kind]


def shared_namespaces(plan: dict) -> dict[str, list[str]]:
    """Namespaces whose stores serve two or more consumers, with those stores."""
    found: dict[str, list[str]] = {}
    for store in objects(plan, STORE):
        for condition in store["spec"]["conditions"]:
            for ns in condition["namespaces"]:
                found.setdefault(ns, []).append(store["metadata"]["name"])
    return {ns: stores for ns, stores in found.items() if len(stores) > 1}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_workload_of_a_shared_namespace_can_reach_another_consumers_secrets(plans, stack):
    plan = plans[stack]
    shared = shared_namespaces(plan)
    assert {"soma-data", "soma-observability", "soma-agents"} <= set(shared)
    reaches = []
    checked = 0
    for ns in shared:
        accounts = service_accounts(plan, ns)
        assert len(accounts) >= 2, ns
        for who in accounts:
            for verb, group, resource, meaning in REACHING:
                checked += 1
                if resource == "secrets" and verb in ("get", "list") and (who.namespace, who.name) in OPERATORS_READING_SECRETS:
                    continue
                for grant in can(plan, who, verb, group, resource, ns):
                    reaches.append(f"{who.user} can {verb} {group or 'core'}/{resource} in {ns} ({meaning}) via {grant.via}")
    assert checked >= 100, "the check covers every service account of every shared namespace"
    assert reaches == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_namespace_editor_gains_no_write_on_secret_sync_from_the_platform(plans, stack):
    """Who holds the built-in edit or admin role in a namespace gets what charts aggregate into it;
    External Secrets' chart would add ExternalSecret and store writes (rbac.aggregateToEdit)."""
    plan = plans[stack]
    editor = Subject("soma-agents", "a-team-member")
    for builtin in ("edit", "admin"):
        for verb in ("create", "update", "patch"):
            for resource in ("externalsecrets", "secretstores"):
                assert can(plan, editor, verb, "external-secrets.io", resource, "soma-agents", builtin=builtin) == [], (builtin, verb, resource)
    assert can(plan, editor, "get", "external-secrets.io", "externalsecrets", "soma-agents", builtin="view"), \
        "the view role still shows where each Secret comes from"


def test_the_review_notices_a_binding_that_opens_the_door(plans):
    """The check above would pass on a plan without RBAC; bind ESO's edit role to a workload and it fails."""
    plan = copy.deepcopy(plans["prod"])
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "oops", "namespace": "soma-data"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "external-secrets-edit"},
               "subjects": [{"kind": "ServiceAccount", "name": "clickhouse"}]}
    plan["resources"].append({"inputs": binding})
    granted = can(plan, Subject("soma-data", "clickhouse"), "create", "external-secrets.io", "externalsecrets", "soma-data")
    assert [g.via for g in granted] == ["RoleBinding/soma-data/oops"]
    assert can(plan, Subject("soma-data", "minio"), "create", "external-secrets.io", "externalsecrets", "soma-data") == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_store_logs_in_as_its_consumer_under_a_role_bound_to_that_account_alone(plans, stack):
    plan = plans[stack]
    roles = {r["inputs"]["roleName"]: r["inputs"] for r in plan["resources"]
             if r["type"] == "vault:kubernetes/authBackendRole:AuthBackendRole"}
    policies = {r["inputs"]["name"]: r["inputs"]["policy"] for r in plan["resources"] if r["type"] == "vault:index/policy:Policy"}
    stores = objects(plan, STORE)
    # the mesh CA's signer role is cert-manager's Vault Issuer login, not a store: one account, in the mesh
    # namespace, under its own policy (what that policy allows is proven in tests/mesh/test_mesh_pki.py)
    from components.mesh.identity.pki import SIGNER_POLICY
    signer = roles.pop(SIGNER_POLICY)
    assert signer["boundServiceAccountNames"] == ["vault-issuer"] and signer["boundServiceAccountNamespaces"] == ["soma-mesh"]
    assert signer["tokenPolicies"] == [SIGNER_POLICY] and SIGNER_POLICY not in {s["spec"]["provider"]["vault"]["auth"]["kubernetes"]["role"] for s in stores}
    # every other role but those of the jobs that log in themselves (no store: the Raft snapshot job, OpenFGA's
    # bootstrap, which writes the store and model IDs) serves exactly one store
    from components.governance.openfga import bootstrap_role
    own_login = {SNAPSHOT_POLICY, bootstrap_role("soma-governance")}
    assert len(stores) == len([r for r in roles if r not in own_login]) >= 10
    for store in stores:
        auth = store["spec"]["provider"]["vault"]["auth"]["kubernetes"]
        account = auth["serviceAccountRef"]
        role = roles[auth["role"]]
        (condition,) = store["spec"]["conditions"]
        assert condition["namespaces"] == [account["namespace"]], store["metadata"]["name"]
        assert role["boundServiceAccountNames"] == [account["name"]], store["metadata"]["name"]
        assert role["boundServiceAccountNamespaces"] == [account["namespace"]], store["metadata"]["name"]
        assert role["tokenPolicies"] == [auth["role"]]
        granted = [line.split('"')[1] for line in policies[auth["role"]].splitlines() if line.startswith("path ")]
        own = f"{account['namespace']}/"
        # administrator-written paths: the off-cluster backup keys, and Alertmanager's receiver credentials
        # (exactly the stack's credentialsPath, data and metadata)
        receivers = platform_settings.parse(stack_config(stack), stack).core.observability.alertmanager.credentials_path
        if account["name"] == "alertmanager-receivers":
            assert sorted(p.split("/", 2)[2] for p in granted) == [receivers, receivers], granted
            continue
        assert granted and all(p.split("/", 2)[2].startswith(own) or "offsite" in auth["role"] for p in granted), granted
