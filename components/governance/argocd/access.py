"""What Argo CD may do in this cluster's agents namespaces: exactly the application kinds its AppProjects
allow, and read what those create (pods, ReplicaSets, events) to report health. Nothing cluster-wide.

Argo CD runs namespaced: the chart's ClusterRoles are off (``createClusterRoles: false``), its in-cluster
destination is a cluster secret limited to the agents namespaces (``namespaces``, ``clusterResources:
false``) and argocd-cm ``resource.respectRBAC: normal`` makes the controller watch only what it may. The
Role below is bound to the controller (syncs) and the API server (the UI's resource views and actions).
The agents namespaces are made by the Agents phase, after Governance, so that phase calls :func:`deployer_access`
(one line) once they exist. The verbs and kinds come from :data:`projects.APPLICATION_KINDS`, so the
Kubernetes RBAC and the AppProjects cannot drift apart.

A spoke cluster (its wave driven by another stack's Argo CD, the hub; docs/architecture/gitops.md, "Which
clusters") runs no Argo CD: the hub's controller and API server reach its API from outside with a bearer token.
:func:`hub_identity` makes the account that token belongs to (:data:`HUB_ACCOUNT`, in the spoke's gitops
namespace, which holds nothing else there) and its long-lived token Secret, and the same Role is bound to it.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.governance.argocd.projects import APPLICATION_KINDS
from components.kit import recommended

ROLE = "argocd-deployer"
SERVICE_ACCOUNTS = ("argocd-application-controller", "argocd-server")
"""The chart's service accounts of the two components that talk to the destination cluster
(controller.serviceAccount.name, server.serviceAccount.name defaults)."""
HUB_ACCOUNT = "argocd-hub"
"""The service account a hub's Argo CD acts as in a spoke cluster (its token is the hub's cluster secret there)."""
HUB_TOKEN = f"{HUB_ACCOUNT}-token"
"""Its token Secret (``kubernetes.io/service-account-token``), which an administrator copies into the hub's Vault."""
SERVICE_ACCOUNT_ANNOTATION = "kubernetes.io/service-account.name"
WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]
READ = ["get", "list", "watch"]
OBSERVED = (("", "pods"), ("", "events"), ("", "endpoints"), ("apps", "replicasets"), ("discovery.k8s.io", "endpointslices"))
"""What the application kinds create, which Argo CD reads to show health and never writes."""
PLURALS = {"Deployment": "deployments", "Service": "services", "ConfigMap": "configmaps",
           "HorizontalPodAutoscaler": "horizontalpodautoscalers", "PodDisruptionBudget": "poddisruptionbudgets",
           "Job": "jobs", "CronJob": "cronjobs"}


def role_rules() -> list[dict]:
    writable: dict[str, list[str]] = defaultdict(list)
    for group, kind in APPLICATION_KINDS:
        writable[group].append(PLURALS[kind])
    readable: dict[str, list[str]] = defaultdict(list)
    for group, resource in OBSERVED:
        readable[group].append(resource)
    return ([{"apiGroups": [g], "resources": sorted(r), "verbs": WRITE} for g, r in sorted(writable.items())]
            + [{"apiGroups": [g], "resources": sorted(r), "verbs": READ} for g, r in sorted(readable.items())])


def local_subjects(argocd_namespace: str) -> list[tuple[str, str]]:
    """(namespace, service account) of an Argo CD running in this cluster: its controller and API server."""
    return [(argocd_namespace, sa) for sa in SERVICE_ACCOUNTS]


def deployer_access(namespace: str, subjects: Sequence[tuple[str, str]], opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """The Role and RoleBinding that let Argo CD (``subjects``: (namespace, service account) pairs, this
    cluster's Argo CD or a hub's account) deploy the application kinds into ``namespace``."""
    labels = recommended(ROLE, "rbac")
    role = k8s.rbac.v1.Role(f"{namespace}-{ROLE}", metadata={"name": ROLE, "namespace": namespace, "labels": labels},
                            rules=role_rules(), opts=opts)
    binding = k8s.rbac.v1.RoleBinding(
        f"{namespace}-{ROLE}", metadata={"name": ROLE, "namespace": namespace, "labels": labels},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        subjects=[{"kind": "ServiceAccount", "name": sa, "namespace": ns} for ns, sa in subjects],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role])))
    return [role, binding]


def hub_identity(namespace: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """The hub's account in this spoke cluster and its long-lived token.

    A ``kubernetes.io/service-account-token`` Secret annotated with the account's name is the documented way
    to get a non-expiring token for a client outside the cluster (Kubernetes docs, "Manually create a
    long-lived API token for a ServiceAccount"): the API server's token controller fills its ``token``,
    ``ca.crt`` and ``namespace``; the program writes no data into it. No pod runs as the account (no token
    automount). Its only grant is :data:`ROLE` in the agents namespaces (:func:`deployer_access`)."""
    labels = recommended(HUB_ACCOUNT, "gitops")
    account = k8s.core.v1.ServiceAccount(
        f"{namespace}-{HUB_ACCOUNT}", metadata={"name": HUB_ACCOUNT, "namespace": namespace, "labels": labels},
        automount_service_account_token=False, opts=opts)
    token = k8s.core.v1.Secret(
        f"{namespace}-{HUB_TOKEN}", type="kubernetes.io/service-account-token",
        metadata={"name": HUB_TOKEN, "namespace": namespace, "labels": labels,
                  "annotations": {SERVICE_ACCOUNT_ANNOTATION: HUB_ACCOUNT}},
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[account])))
    return [account, token]
