"""Phase 4, Agents: the first-party services (identity, gateway, orchestrator, tool service, memory gateway), each
deployed when ``agents.services.<name>.enabled`` (components/agents/services.py), and what they share."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.agents.services import AgentServicesDeployment
from components.agents.signing_keys import signing_keys
from components.core import CoreOutputs
from components.governance import GovernanceOutputs
from components.governance.argocd.access import deployer_access
from components.kit import KitContext
from components.mesh import MeshOutputs
from components.phase import Phase
from components.settings import AgentsSettings, PlatformSettings


@dataclass(frozen=True)
class AgentsOutputs:
    namespaces: tuple[str, ...]


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
        # Argo CD deploys the applications here (docs/architecture/gitops.md): its Role, once the namespace exists
        self.argocd_access = ([r for ns in self.namespace.values() for r in deployer_access(
            ns.name, governance.argocd_namespace, pulumi.ResourceOptions(parent=self, depends_on=[ns.namespace]))]
            if governance.argocd_namespace else [])
        # the services (none until their images are pinned and a stack enables them; settings refuse otherwise)
        self.services = (AgentServicesDeployment(settings.services, platform, agents_ns.name, ctx.with_metrics_crds(*core.metrics_crds),
                                                 core, governance.openfga, [agents_ns.namespace],
                                                 pulumi.ResourceOptions(parent=self))
                         if settings.services.enabled() else None)
        self.outputs = AgentsOutputs(namespaces=tuple(n.name for n in self.namespace.values()))
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
