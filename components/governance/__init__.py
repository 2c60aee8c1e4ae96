"""Phase 3, Governance: relationship-based access (OpenFGA), GitOps (Argo CD), compliance over the audit
pipeline, and cost (Kubecost). Each part is its own component; this file lists what the phase deploys."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.governance.argocd import ArgoCd
from components.governance.compliance import Compliance, ComplianceOutputs
from components.governance.compliance.shipper import AuditShipper
from components.governance.kubecost import Cost, CostOutputs
from components.governance.openfga import client_apps, OpenFga, OpenFgaOutputs
from components.kit import KitContext
from components.mesh import MeshOutputs
from components.phase import Phase
from components.settings import GovernanceSettings, PlatformSettings


@dataclass(frozen=True)
class GovernanceOutputs:
    namespaces: tuple[str, ...]
    cost: CostOutputs | None = None
    openfga: OpenFgaOutputs | None = None
    """Where the gateway and the orchestrator ask for authorization decisions, and where the store and model IDs are."""
    argocd_namespace: str | None = None
    """Where Argo CD runs (its AppProjects and ApplicationSet live there); None when governance.argocd is unset."""
    gitops_namespace: str | None = None
    """The gitops namespace, whether or not Argo CD runs here: in a spoke cluster the hub's account lives there."""
    gitops_ready: tuple[pulumi.Resource, ...] = ()
    """What a resource placed in the gitops namespace waits for (the Namespace)."""
    compliance: ComplianceOutputs | None = None


class Governance(Phase):
    def __init__(
        self, settings: GovernanceSettings, ctx: KitContext, core: CoreOutputs, mesh: MeshOutputs, platform: PlatformSettings,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("Governance", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        ctx = ctx.with_metrics_crds(*core.metrics_crds)  # the parts' monitors and charts wait for Core's monitoring CRDs
        # the parts, each in its own module under components/governance/ (one line each)
        self.cost = Cost(self.namespace["cost"].name, settings.kubecost, ctx, core, platform, inside) if "cost" in self.namespace else None
        self.openfga = (OpenFga(settings.openfga, ctx, core, settings.namespaces["governance"].name, platform.agents.namespaces["agents"].name,
                                platform.core.vault.kv_mount, platform.mesh.identity.trust_domain,
                                client_apps(platform.agents.services.enabled()), opts=inside) if settings.openfga and core.database else None)
        self.argocd = (ArgoCd(settings.argocd.placed(platform.agents.namespaces["agents"].name), self.namespace["gitops"].name,
                             platform.domain, core, ctx, inside) if settings.argocd and core.secrets else None)
        if settings.argocd and not core.secrets:
            # its Redis password, OIDC client secret and cluster secrets come from Vault
            pulumi.log.warn("Governance: Argo CD waits for core.vault.configure (its credentials live in Vault); not installed in this run")
        self.compliance = Compliance(settings.compliance, platform.stack, core.observability_namespace, inside) if settings.compliance else None
        shipper = settings.compliance.shipper if settings.compliance else None
        self.shipper = (AuditShipper(shipper, self.namespace["governance"].name, ctx, core,
                                     platform.mesh.namespaces["policy"].name if platform.mesh.edge else None,
                                     [self.namespace["governance"].namespace], inside)
                        if shipper and shipper.enabled and core.secrets else None)
        self.outputs = GovernanceOutputs(namespaces=tuple(n.name for n in self.namespace.values()),
                                         openfga=self.openfga.outputs if self.openfga else None,
                                         cost=self.cost.outputs if self.cost else None,
                                         argocd_namespace=self.namespace["gitops"].name if self.argocd else None,
                                         gitops_namespace=self.namespace["gitops"].name if "gitops" in self.namespace else None,
                                         gitops_ready=(self.namespace["gitops"].namespace,) if "gitops" in self.namespace else (),
                                         compliance=self.compliance.outputs if self.compliance else None)
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
