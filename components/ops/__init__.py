"""Phase 5, Ops: load and chaos tests, promotion gates, SBOM inventory (docs/runbooks/ops.md).

Load tests (``ops.loadTests``): the k6 operator and one TestRun per scenario against the Agents phase's gateway
(components/ops/load.py, docs/load-tests.md). Chaos tests (``ops.chaos``, staging only): Chaos Mesh and one
resilience Workflow per release (components/ops/chaos.py, docs/chaos.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.agents import AgentsOutputs
from components.core import CoreOutputs
from components.kit import KitContext, Peer
from components.ops import chaos
from components.ops.load import TOKEN_KEY, LoadTests
from components.phase import Phase
from components.settings import OpsSettings, PlatformSettings


@dataclass(frozen=True)
class OpsOutputs:
    namespaces: tuple[str, ...]


class Ops(Phase):
    def __init__(self, settings: OpsSettings, ctx: KitContext, core: CoreOutputs, agents: AgentsOutputs | None = None,
                 opts: pulumi.ResourceOptions | None = None, *, platform: PlatformSettings):
        super().__init__("Ops", opts)
        # Chaos Mesh's namespace is the phase's one exception to restricted Pod Security (its daemon)
        self.namespace = self.namespaces(settings.namespaces, ctx, chaos=("privileged", chaos.POD_SECURITY_REASON))
        self.load_tests = self._load_tests(settings, ctx, core, agents)
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        self.chaos = chaos.for_stack(settings.chaos, ctx, self.namespace.get("chaos"), core, platform, inside)
        self.outputs = OpsOutputs(namespaces=tuple(n.name for n in self.namespace.values()))
        self.register_outputs({"namespaces": list(self.outputs.namespaces)})

    def _load_tests(self, settings: OpsSettings, ctx: KitContext, core: CoreOutputs, agents: AgentsOutputs | None) -> LoadTests | None:
        """The k6 operator and TestRuns; settings refuse ``ops.loadTests`` without the gateway, Vault or pinned images."""
        if settings.load_tests is None:
            return None
        gateway = agents.gateway if agents is not None else None
        if gateway is None or core.secrets is None:
            raise ValueError("ops.loadTests needs the Agents phase's gateway and Core's Vault (settings check both)")
        ops_ns = self.namespace["ops"]
        token = core.secrets.share("k6-load-token", ops_ns.name, settings.load_tests.token_path, (TOKEN_KEY,), after=[ops_ns.namespace])
        return LoadTests(settings.load_tests, ops_ns.name, gateway.url, Peer(namespace=gateway.namespace, pods=dict(gateway.pods)),
                         gateway.port, core.api_server_cidr, token, ctx.with_metrics_crds(*core.metrics_crds), [ops_ns.namespace],
                         pulumi.ResourceOptions(parent=self))
