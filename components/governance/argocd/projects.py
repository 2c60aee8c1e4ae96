"""AppProjects: what Argo CD may deploy, from where, to where, and only when the commit is signed.

One project per environment (``apps-<env>``), so an Application of one wave can never deploy into another
environment's destination. Each project allows:

* ``sourceRepos``: the one applications repository of the stack (``governance.argocd.repository``);
* ``destinations``: that environment's cluster and agents namespace, nothing else;
* ``clusterResourceWhitelist``: nothing (no Namespace, CRD, ClusterRole: those are the platform's);
* ``namespaceResourceWhitelist``: :data:`APPLICATION_KINDS`, the kinds an application's own manifests hold.
  Everything else in the agents namespaces (ServiceAccounts bound to Vault roles, ExternalSecrets,
  NetworkPolicies and AuthorizationPolicies, quotas, the mesh's objects) is rendered by Pulumi;
  tests/governance/test_argocd_ownership.py shows no object is owned by both;
* ``signatureKeys``: the key IDs of ``governance.argocd.signingKeys``; Argo CD then syncs only revisions
  whose commit (or annotated tag) is signed by one of them (GnuPG verification, keys from
  ``argocd-gpg-keys-cm``).
"""
from __future__ import annotations

from components.governance.argocd.promotion import project_name
from components.settings import ArgoCdEnvironment, ArgoCdSettings

APPLICATION_KINDS = (
    ("apps", "Deployment"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("policy", "PodDisruptionBudget"),
    ("batch", "Job"),
    ("batch", "CronJob"),
)
"""(API group, kind) an application's manifests may hold: its workloads and their configuration. No Secret
(credentials come from Vault through External Secrets), no ServiceAccount or RBAC (Vault roles bind the
platform's service accounts), no NetworkPolicy or mesh policy (flows are declared once, by the platform)."""


def project_spec(settings: ArgoCdSettings, environment: ArgoCdEnvironment) -> dict:
    return {
        "description": f"first-party applications, {environment.name} wave: signed commits of {settings.repository} "
                       f"into {environment.namespace} on {environment.server}",
        "sourceRepos": [settings.repository],
        "destinations": [{"server": environment.server, "namespace": environment.namespace}],
        "clusterResourceWhitelist": [],
        "namespaceResourceWhitelist": [{"group": group, "kind": kind} for group, kind in APPLICATION_KINDS],
        "signatureKeys": [{"keyID": key.key_id} for key in settings.signing_keys],
        "orphanedResources": {"warn": True},
    }


def projects(settings: ArgoCdSettings) -> dict[str, dict]:
    """Project name -> spec, one per environment."""
    return {project_name(env.name): project_spec(settings, env) for env in settings.environments}
