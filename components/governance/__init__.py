"""Phase 3, Governance: relationship-based access (OpenFGA), GitOps (Argo CD), compliance over the audit
pipeline, and cost (Kubecost). Each part is its own component; this file lists what the phase deploys."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.governance.compliance import Compliance, ComplianceOutputs
from components.kit import KitContext
from components.mesh import MeshOutputs
from components.phase import Phase
from components.settings import GovernanceSettings, PlatformSettings


@dataclass(frozen=True)
class GovernanceOutputs:
    namespaces: tuple[str, ...]
    compliance: ComplianceOutputs | None = None


class Governance(Phase):
    def __init__(
        self, settings: GovernanceSettings, ctx: KitContext, core: CoreOutputs, mesh: MeshOutputs, platform: PlatformSettings,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("Governance", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        # the parts, each in its own module under components/governance/ (one line each)
        self.compliance = Compliance(settings.compliance, platform.stack, core.observability_namespace, inside) if settings.compliance else None
        self.outputs = GovernanceOutputs(namespaces=tuple(n.name for n in self.namespace.values()),
                                         compliance=self.compliance.outputs if self.compliance else None)
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
