"""Phase 4, Agents: orchestrator, tool service and memory gateway (filled by later issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.agents.signing_keys import signing_keys
from components.core import CoreOutputs
from components.governance import GovernanceOutputs
from components.governance.argocd.access import deployer_access
from components.kit import KitContext
from components.mesh import MeshOutputs
from components.phase import Phase
from components.settings import PhaseNamespaces


@dataclass(frozen=True)
class AgentsOutputs:
    namespaces: tuple[str, ...]


class Agents(Phase):
    def __init__(
        self, settings: PhaseNamespaces, ctx: KitContext, core: CoreOutputs, mesh: MeshOutputs,
        governance: GovernanceOutputs, opts: pulumi.ResourceOptions | None = None,
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
        self.outputs = AgentsOutputs(namespaces=tuple(n.name for n in self.namespace.values()))
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
