"""Phase 2, Mesh: service mesh, edge gateway and admission policy (filled by the mesh issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.kit import KitContext
from components.mesh.signatures import ImageSignatures
from components.phase import Phase
from components.settings import MeshSettings


@dataclass(frozen=True)
class MeshOutputs:
    namespaces: tuple[str, ...]


class Mesh(Phase):
    def __init__(self, settings: MeshSettings, ctx: KitContext, core: CoreOutputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Mesh", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        self.signatures = settings.signatures and ImageSignatures(
            settings.signatures, self.namespace["admission"].name, ctx.with_metrics_crds(*core.metrics_crds), core.api_server_cidr,
            pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()]))
        self.outputs = MeshOutputs(namespaces=tuple(n.name for n in self.namespace.values()))
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
