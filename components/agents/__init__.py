"""Phase 4, Agents: the first-party services (identity, gateway, orchestrator, tool service, memory gateway), each
deployed when ``agents.services.<name>.enabled`` (components/agents/services.py), and what they share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pulumi

from components.agents.services import PORT, AgentServicesDeployment, url
from components.agents.signing_keys import signing_keys
from components.core import CoreOutputs
from components.governance import GovernanceOutputs
from components.governance.argocd.access import HUB_ACCOUNT, deployer_access, hub_identity, local_subjects
from components.kit import KitContext, selector
from components.mesh import MeshOutputs
from components.phase import Phase
from components.settings import AgentsSettings, PlatformSettings


@dataclass(frozen=True)
class ServiceEndpoint:
    """A first-party service as a later phase reaches it: its in-cluster URL, and its pods and port for the flows."""

    url: str
    namespace: str
    pods: Mapping[str, str]
    port: int


@dataclass(frozen=True)
class AgentsOutputs:
    namespaces: tuple[str, ...]
    gateway: ServiceEndpoint | None = None
    """The gateway, when this stack deploys it (the Ops phase's load tests target it)."""


class Agents(Phase):
    def __init__(
        self, settings: AgentsSettings, ctx: KitContext, core: CoreOutputs, mesh: MeshOutputs,
        governance: GovernanceOutputs, platform: PlatformSettings, opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("Agents", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        agents_ns = self.namespace["agents"]
        self.signing_keys = (
            signing_keys(core.secrets, agents_ns.name, after=[agents_ns.namespace]) if core.secrets is not None else {}
        )
        # Argo CD deploys the applications here (docs/architecture/gitops.md): its Role, once the namespace exists,
        # bound to this cluster's Argo CD (none yet while it waits for Vault), or in a spoke (delivery argocd, no
        # governance.argocd) to the hub's account
        self.hub_identity: list[pulumi.Resource] = []
        if governance.argocd_namespace:
            subjects = local_subjects(governance.argocd_namespace)
        elif platform.governance.argocd is None and settings.delivery.mode == "argocd" and governance.gitops_namespace:
            self.hub_identity = hub_identity(governance.gitops_namespace, pulumi.ResourceOptions(
                parent=self, depends_on=list(governance.gitops_ready)))
            subjects = [(governance.gitops_namespace, HUB_ACCOUNT)]
        else:
            subjects = []
        self.argocd_access = [r for ns in self.namespace.values() for r in deployer_access(
            ns.name, subjects, pulumi.ResourceOptions(parent=self, depends_on=[ns.namespace, *self.hub_identity[:1]]))] if subjects else []
        # the services (none until their images are pinned and a stack enables them; settings refuse otherwise)
        self.services = (AgentServicesDeployment(settings.services, platform, agents_ns.name, ctx.with_metrics_crds(*core.metrics_crds),
                                                 core, governance.openfga, [agents_ns.namespace],
                                                 pulumi.ResourceOptions(parent=self))
                         if settings.services.enabled() else None)
        gateway = (ServiceEndpoint(url("gateway", agents_ns.name), agents_ns.name, selector("gateway"), PORT)
                   if self.services is not None and "gateway" in self.services.workloads else None)
        self.outputs = AgentsOutputs(namespaces=tuple(n.name for n in self.namespace.values()), gateway=gateway)
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
