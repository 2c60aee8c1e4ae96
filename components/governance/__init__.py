"""Phase 3, Governance: relationship-based access, GitOps, audit and cost (filled by later issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.kit import KitContext
from components.mesh import MeshOutputs
from components.phase import Phase
from components.settings import PhaseNamespaces


@dataclass(frozen=True)
class GovernanceOutputs:
    namespaces: tuple[str, ...]


class Governance(Phase):
    def __init__(
        self, settings: PhaseNamespaces, ctx: KitContext, core: CoreOutputs, mesh: MeshOutputs,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("Governance", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        self.outputs = GovernanceOutputs(namespaces=tuple(n.name for n in self.namespace.values()))
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
