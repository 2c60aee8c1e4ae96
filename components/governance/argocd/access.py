"""What Argo CD may do in this cluster's agents namespaces: exactly the application kinds its AppProjects
allow, and read what those create (pods, ReplicaSets, events) to report health. Nothing cluster-wide.

Argo CD runs namespaced: the chart's ClusterRoles are off (``createClusterRoles: false``), its in-cluster
destination is a cluster secret limited to the agents namespaces (``namespaces``, ``clusterResources:
false``) and argocd-cm ``resource.respectRBAC: normal`` makes the controller watch only what it may. The
Role below is bound to the controller (syncs) and the API server (the UI's resource views and actions).
The agents namespaces are made by the Agents phase, after Governance, so that phase calls :func:`deployer_access`
(one line) once they exist. The verbs and kinds come from :data:`projects.APPLICATION_KINDS`, so the
Kubernetes RBAC and the AppProjects cannot drift apart.
"""
from __future__ import annotations

from collections import defaultdict

import pulumi
import pulumi_kubernetes as k8s

from components.governance.argocd.projects import APPLICATION_KINDS
from components.kit import recommended

ROLE = "argocd-deployer"
SERVICE_ACCOUNTS = ("argocd-application-controller", "argocd-server")
"""The chart's service accounts of the two components that talk to the destination cluster
(controller.serviceAccount.name, server.serviceAccount.name defaults)."""
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


def deployer_access(namespace: str, argocd_namespace: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """The Role and RoleBinding that let Argo CD deploy the application kinds into ``namespace``."""
    labels = recommended(ROLE, "rbac")
    role = k8s.rbac.v1.Role(f"{namespace}-{ROLE}", metadata={"name": ROLE, "namespace": namespace, "labels": labels},
                            rules=role_rules(), opts=opts)
    binding = k8s.rbac.v1.RoleBinding(
        f"{namespace}-{ROLE}", metadata={"name": ROLE, "namespace": namespace, "labels": labels},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        subjects=[{"kind": "ServiceAccount", "name": sa, "namespace": argocd_namespace} for sa in SERVICE_ACCOUNTS],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role])))
    return [role, binding]
