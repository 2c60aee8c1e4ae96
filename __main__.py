"""SomaAgentHub: load the stack's settings, build the five phases in order, export what they expose.

Every setting is validated before the first resource is registered; each phase receives only
what earlier phases hand it, as explicit arguments.
"""
import pulumi

from components import catalog, settings
from components.agents import Agents
from components.core import ClientNamespaces, Core, telemetry_for
from components.governance import Governance
from components.kit import KitContext
from components.mesh import Mesh
from components.ops import Ops

config = settings.load()
ctx = KitContext.from_settings(config, catalog.load(), telemetry_for(config.core))
on = config.phases

# every other phase needs Core; settings refuse a stack without it. The stores admit clients
# only from the later phases' namespaces named here.
core = Core(config.core, ctx, ClientNamespaces.of(config))
mesh = Mesh(config.mesh, ctx, core=core.outputs, platform=config) if on.mesh else None
governance = Governance(config.governance, ctx, core=core.outputs, mesh=mesh.outputs, platform=config) if on.governance and mesh else None
agents = (
    Agents(config.agents, ctx, core=core.outputs, mesh=mesh.outputs, governance=governance.outputs, platform=config)
    if on.agents and mesh and governance
    else None
)
ops = Ops(config.ops, ctx, core=core.outputs, agents=agents.outputs if agents else None, platform=config) if on.ops else None
# last: the mesh's AuthorizationPolicies from every flow the phases declared (one list feeds both layers)
if mesh:
    mesh.authorize(ctx, [phase for phase in (core, mesh, governance, agents, ops) if phase])

pulumi.export("phases", list(on.enabled()))
pulumi.export("namespaces", list(config.all_namespaces()))
pulumi.export("otlpEndpoint", ctx.telemetry.otlp_endpoint)
