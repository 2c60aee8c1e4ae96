"""Phase 5, Ops: load and chaos tests, promotion gates, SBOM inventory (filled by later issues)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import CoreOutputs
from components.kit import KitContext
from components.phase import Phase
from components.settings import OpsSettings


@dataclass(frozen=True)
class OpsOutputs:
    namespaces: tuple[str, ...]


class Ops(Phase):
    def __init__(self, settings: OpsSettings, ctx: KitContext, core: CoreOutputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Ops", opts)
        self.namespace = self.namespaces(settings.namespaces, ctx)
        self.outputs = OpsOutputs(namespaces=tuple(n.name for n in self.namespace.values()))
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})
