"""Phase 2, Mesh: service mesh, edge gateway and admission policy (filled by the mesh issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.kit import KitContext
from components.kit.context import namespace_keys
from components.mesh.istio import Istio, IstioPlacement
from components.mesh.istio.charts import NODE_AGENTS_POD_SECURITY_REASON
from components.phase import Phase
from components.settings import MeshSettings, PlatformSettings


@dataclass(frozen=True)
class MeshOutputs:
    namespaces: tuple[str, ...]


class Mesh(Phase):
    def __init__(self, settings: MeshSettings, ctx: KitContext, core: CoreOutputs, opts: pulumi.ResourceOptions | None = None,
                 platform: PlatformSettings | None = None, gateway_api_crds: tuple[pulumi.Resource, ...] = ()):
        super().__init__("Mesh", opts)
        # the node agents' namespace is the phase's one Pod Security exception (istio-cni and ztunnel)
        self.namespace = self.namespaces(settings.namespaces, ctx, nodeAgents=("privileged", NODE_AGENTS_POD_SECURITY_REASON))
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        mesh_ctx = ctx.with_metrics_crds(*core.metrics_crds)
        self.istio = (
            Istio(settings.istio, mesh_ctx, IstioPlacement(
                istio_namespace=settings.namespaces["istio"].name, node_namespace=settings.namespaces["nodeAgents"].name,
                namespace_of=namespace_keys(platform), api_server_cidr=core.api_server_cidr,
                scraper_namespace=ctx.telemetry.scraper_namespace), inside, gateway_api_crds=gateway_api_crds)
            if settings.istio is not None and platform is not None else None
        )
        self.outputs = MeshOutputs(namespaces=tuple(n.name for n in self.namespace.values()))
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})

    def authorize(self, ctx: KitContext, phases: list[Phase]) -> None:
        """The mesh's per-namespace STRICT mTLS and AuthorizationPolicies from every flow the phases declared:
        called after the last phase, each namespace's objects waiting for that namespace."""
        if self.istio is not None:
            namespaces = {ns.name: ns.namespace for phase in phases for ns in phase.namespace.values()}
            self.istio.authorize(ctx, namespaces)
