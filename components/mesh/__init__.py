"""Phase 2, Mesh: service mesh, edge gateway and admission policy (filled by the mesh issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.kit import KitContext
from components.kit.context import namespace_keys
from components.mesh.admission import Admission
from components.mesh.edge import Edge, EdgeOutputs, with_backend_names
from components.mesh.edge.opa import decision_log_service
from components.mesh.identity import Identity, IdentityOutputs
from components.mesh.istio import Istio, IstioPlacement
from components.mesh.istio.charts import NODE_AGENTS_POD_SECURITY_REASON
from components.mesh.signatures import ImageSignatures
from components.phase import Phase
from components.settings import MeshSettings, PlatformSettings


@dataclass(frozen=True)
class MeshOutputs:
    namespaces: tuple[str, ...]
    edge: EdgeOutputs | None = None
    identity: IdentityOutputs | None = None
    """The plug-in CA: istiod's values and the ``cacerts`` Certificate istiod must wait for."""


class Mesh(Phase):
    def __init__(self, settings: MeshSettings, ctx: KitContext, core: CoreOutputs, platform: PlatformSettings,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("Mesh", opts)
        # the node agents' namespace is the phase's one Pod Security exception (istio-cni and ztunnel)
        self.namespace = self.namespaces(settings.namespaces, ctx, nodeAgents=("privileged", NODE_AGENTS_POD_SECURITY_REASON))
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        mesh_ctx = ctx.with_metrics_crds(*core.metrics_crds)
        self.admission = Admission(settings.admission, self.namespace["admission"].name, core.observability_namespace,
                                   core.api_server_cidr, mesh_ctx, pulumi.ResourceOptions(parent=self, depends_on=[self.namespace["admission"].namespace]))
        self.signatures = settings.signatures and ImageSignatures(
            settings.signatures, self.namespace["admission"].name, mesh_ctx, core.api_server_cidr, inside)
        self.edge = (Edge(with_backend_names(settings.edge, platform), platform.domain, settings.namespaces["gateway"].name, settings.namespaces["policy"].name,
                          core.observability_namespace, core.api_server_cidr, core.cluster_issuer, core.cert_manager, mesh_ctx, inside,
                          decision_logs=decision_log_service(platform))
                     if settings.edge else None)
        # workload identity: the Vault-rooted plug-in CA, once Core's Vault is configured
        self.identity = Identity(settings, ctx, core, inside) if core.vault else None
        if settings.istio is not None and self.identity is None:
            # istiod started without its plug-in CA makes a self-signed one and keeps it: no mesh until Vault is
            pulumi.log.warn("Mesh: Istio waits for core.vault.configure (the mesh CA lives in Vault); not installed in this run")
        # the waypoints are Gateway API Gateways: their CRDs come with the Envoy Gateway chart
        self.istio = (
            Istio(settings.istio, mesh_ctx, IstioPlacement(
                istio_namespace=settings.namespaces["istio"].name, node_namespace=settings.namespaces["nodeAgents"].name,
                namespace_of=namespace_keys(platform), api_server_cidr=core.api_server_cidr,
                scraper_namespace=ctx.telemetry.scraper_namespace), self.identity.outputs, inside,
                gateway_api_crds=tuple(self.edge.outputs.gateway_api_crds.values()) if self.edge else ())
            if settings.istio is not None and self.identity is not None else None
        )
        if self.istio is not None and self.edge is not None and self.edge.outputs.public_entry is not None:
            self.public_entry = self.istio.admit_public(self.edge.outputs.public_entry)
        self.outputs = MeshOutputs(namespaces=tuple(n.name for n in self.namespace.values()),
                                   edge=self.edge.outputs if self.edge else None,
                                   identity=self.identity.outputs if self.identity else None)
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})

    def authorize(self, ctx: KitContext, phases: list[Phase]) -> None:
        """The mesh's per-namespace STRICT mTLS and AuthorizationPolicies from every flow the phases declared:
        called after the last phase, each namespace's objects waiting for that namespace."""
        if self.istio is not None:
            namespaces = {ns.name: ns.namespace for phase in phases for ns in phase.namespace.values()}
            self.istio.authorize(ctx, namespaces)
