"""A single-cluster estate: one Argo CD driving one in-cluster wave, its own. No stack file is laid out this way
since dev became a spoke of prod's hub (docs/architecture/gitops.md, "Which clusters"), but settings still accept
it (a laptop or an evaluation cluster with nothing else to promote to), so its rules are tested on this variant
of the dev stack: dev's settings plus an Argo CD block sized for a laptop (one of each part, local admin, no SSO),
its one wave ``dev`` in-cluster, and the applications repository's host declared as dev's egress. Settings only:
nothing here renders.
"""
from __future__ import annotations

import copy
from typing import Any

from tests.helpers import config_with, stack_document

STACK = "dev"
ONE = {"replicas": 1, "resources": {"cpuRequest": "50m", "memoryRequest": "128Mi", "cpuLimit": "500m", "memoryLimit": "256Mi"}}


def argocd() -> dict:
    """prod's Argo CD block made single-cluster: one of each part, local admin instead of SSO, one in-cluster wave."""
    block = copy.deepcopy(stack_document("prod")["somaagenthub:governance"]["argocd"])
    for part in ("controller", "repoServer", "server", "applicationSet"):
        block[part] = copy.deepcopy(ONE)
    block.update(adminEnabled=True, environments=[{"name": "dev"}])
    del block["sso"]
    return block


def governance() -> dict:
    return {**copy.deepcopy(stack_document(STACK)["somaagenthub:governance"]), "argocd": argocd()}


def mesh() -> dict:
    """dev's mesh with the one way out a single-cluster Argo CD needs: its repo-server to the Git host."""
    block = copy.deepcopy(stack_document(STACK)["somaagenthub:mesh"])
    block["istio"]["egress"] = {"argocd-git": {
        "hosts": ["git.soma.example.com"], "ports": [443], "protocol": "TLS", "cidrs": ["192.0.2.128/28"],
        "namespaces": ["governance.gitops"], "pods": {"app.kubernetes.io/name": "argocd-repo-server"},
        "reason": "Argo CD's repo-server clones the applications repository (governance.argocd.repository) over HTTPS"}}
    return block


def config(**changes: Any) -> dict[str, str]:
    """The variant's config, with top-level blocks replaced as in :func:`tests.helpers.config_with`."""
    return config_with(STACK, **{"governance": governance(), "mesh": mesh(), **changes})
