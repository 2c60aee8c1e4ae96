"""Phase 2, Mesh: service mesh, edge gateway and admission policy (filled by the mesh issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.kit import KitContext
from components.mesh.identity import Identity, IdentityOutputs
from components.phase import Phase
from components.settings import MeshSettings


@dataclass(frozen=True)
class MeshOutputs:
    namespaces: tuple[str, ...]
    identity: IdentityOutputs | None = None
    """The plug-in CA: istiod's values and the ``cacerts`` Certificate istiod must wait for."""


class Mesh(Phase):
    def __init__(self, settings: MeshSettings, ctx: KitContext, core: CoreOutputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Mesh", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        # workload identity (issue 11, point 2): Vault-rooted plug-in CA, once Core's Vault is configured
        self.identity = (Identity(settings, ctx, core, pulumi.ResourceOptions(
            parent=self, depends_on=[n.namespace for n in self.namespace.values()])) if core.vault else None)
        self.outputs = MeshOutputs(namespaces=tuple(n.name for n in self.namespace.values()),
                                   identity=self.identity.outputs if self.identity else None)
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
