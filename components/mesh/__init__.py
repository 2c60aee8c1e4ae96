"""Phase 2, Mesh: service mesh, edge gateway and admission policy (filled by the mesh issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.mesh.edge import Edge, EdgeOutputs
from components.kit import KitContext
from components.mesh.admission import Admission
from components.phase import Phase
from components.settings import MeshSettings


@dataclass(frozen=True)
class MeshOutputs:
    namespaces: tuple[str, ...]
    edge: EdgeOutputs | None = None


class Mesh(Phase):
    def __init__(self, settings: MeshSettings, ctx: KitContext, core: CoreOutputs, domain: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("Mesh", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        self.admission = Admission(settings.admission, self.namespace["admission"].name, core.observability_namespace,
                                   core.api_server_cidr, ctx, pulumi.ResourceOptions(parent=self, depends_on=[self.namespace["admission"].namespace]))
        self.edge = (Edge(settings.edge, domain, settings.namespaces["gateway"].name, settings.namespaces["policy"].name,
                          core.observability_namespace, core.api_server_cidr, core.cluster_issuer, ctx, inside)
                     if settings.edge else None)
        self.outputs = MeshOutputs(namespaces=tuple(n.name for n in self.namespace.values()),
                                   edge=self.edge.outputs if self.edge else None)
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
