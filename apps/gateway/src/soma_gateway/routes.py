"""The gateway's route table: every public method + path it serves, the OpenFGA question each one asks and
the backing service it forwards to.

Declared as data so that one table drives matching, authorization, forwarding, the audit event's action and
resource, the store test of the model's decisions (tests/openfga/gateway.fga.yaml) and the docs. A request
that matches no route is refused before anything else (404 ``route_not_found``): the gateway forwards only
what it can authorize.

Relations and object types are the Governance model's (components/governance/openfga/model.fga); a route
whose relation the model does not define is caught by the tests, which read the model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# an object id as OpenFGA takes it (no ':' or '#', no whitespace) and the audit contract's resource.id (<=256)
_OBJECT_ID = r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}"


CALLER_TENANT = "@tenant"
"""``object_param`` of a route whose path names no object (a listing, the MCP endpoint): the object asked about
is the caller's own tenant, and the backing service authorizes every object the request then touches."""


@dataclass(frozen=True)
class Route:
    """One public endpoint.

    ``path`` uses ``{name}`` segments; ``object_param`` names the one that is the OpenFGA object id (typed
    ``object_type``). ``upstream`` names a backing service from settings and ``upstream_path`` is the path
    there (same ``{name}`` segments). ``action`` is the audit event's action. ``forward_authorization`` lets
    the caller's bearer token through to the upstream; off unless a route says why it needs it.
    """

    name: str
    method: str
    path: str
    relation: str
    object_type: str
    object_param: str
    upstream: str
    upstream_path: str
    action: str
    forward_authorization: bool = False
    _pattern: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        params = _PARAM.findall(self.path)
        if self.object_param == CALLER_TENANT:
            if self.object_type != "tenant":
                raise ValueError(f"route {self.name}: a route about the caller's tenant asks about object type 'tenant'")
        elif self.object_param not in params:
            raise ValueError(f"route {self.name}: object_param {self.object_param!r} is not a segment of {self.path!r}")
        unknown = set(_PARAM.findall(self.upstream_path)) - set(params)
        if unknown:
            raise ValueError(f"route {self.name}: upstream_path uses {sorted(unknown)} that {self.path!r} does not capture")
        regex = "^" + _PARAM.sub(lambda m: f"(?P<{m[1]}>{_OBJECT_ID})", re.escape(self.path).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        object.__setattr__(self, "_pattern", re.compile(regex))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method:
            return None
        found = self._pattern.match(path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class MatchedRoute:
    route: Route
    params: Mapping[str, str]

    @property
    def object_id(self) -> str:
        return self.params[self.route.object_param]

    @property
    def fga_object(self) -> str:
        return f"{self.route.object_type}:{self.object_id}"

    def object_id_for(self, tenant: str | None) -> str:
        """The object's id for a caller of ``tenant`` (only a caller-tenant route depends on it)."""
        if self.route.object_param == CALLER_TENANT:
            return tenant or ""
        return self.object_id

    def fga_object_for(self, tenant: str) -> str:
        return f"{self.route.object_type}:{self.object_id_for(tenant)}"

    def upstream_path(self) -> str:
        return _PARAM.sub(lambda m: self.params[m[1]], self.route.upstream_path)


class RouteTable:
    """Ordered routes; the first that matches wins. Also answers "path known, method not" (405)."""

    def __init__(self, routes: Iterable[Route]):
        self.routes = tuple(routes)
        names = [r.name for r in self.routes]
        if len(names) != len(set(names)):
            raise ValueError(f"route names must be unique: {names}")

    def match(self, method: str, path: str) -> MatchedRoute | None:
        for route in self.routes:
            params = route.match(method, path)
            if params is not None:
                return MatchedRoute(route, params)
        return None

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({r.method for r in self.routes if r._pattern.match(path)})


ORCHESTRATOR, MEMORY, TOOLS = "orchestrator", "memory", "tools"

#: The public API. Relations: workflow can_run/can_view/can_edit, agent can_invoke/can_manage,
#: tool can_call (callers are agents and workflows), memory_collection can_read/can_write.
DEFAULT_ROUTES = RouteTable([
    Route("workflow-run", "POST", "/v1/workflows/{workflow_id}/runs", "can_run", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}/runs", "workflow.run.start"),
    Route("workflow-read", "GET", "/v1/workflows/{workflow_id}", "can_view", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}", "workflow.read"),
    Route("workflow-edit", "PUT", "/v1/workflows/{workflow_id}", "can_edit", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}", "workflow.update"),
    # a run is reached through its workflow: the OpenFGA object is the workflow, and the orchestrator answers 404
    # for a run of another workflow or tenant
    Route("run-read", "GET", "/v1/workflows/{workflow_id}/runs/{run_id}", "can_view", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}/runs/{run_id}", "workflow.run.read"),
    Route("run-history", "GET", "/v1/workflows/{workflow_id}/runs/{run_id}/history", "can_view", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}/runs/{run_id}/history", "workflow.run.read"),
    Route("run-events", "GET", "/v1/workflows/{workflow_id}/runs/{run_id}/events", "can_view", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}/runs/{run_id}/events", "workflow.run.read"),
    Route("run-resume", "POST", "/v1/workflows/{workflow_id}/runs/{run_id}/resume", "can_run", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}/runs/{run_id}/resume", "workflow.run.resume"),
    Route("run-cancel", "POST", "/v1/workflows/{workflow_id}/runs/{run_id}/cancel", "can_run", "workflow", "workflow_id",
          ORCHESTRATOR, "/workflows/{workflow_id}/runs/{run_id}/cancel", "workflow.run.cancel"),
    Route("agent-message", "POST", "/v1/agents/{agent_id}/messages", "can_invoke", "agent", "agent_id",
          ORCHESTRATOR, "/agents/{agent_id}/messages", "agent.invoke"),
    Route("agent-configure", "PUT", "/v1/agents/{agent_id}", "can_manage", "agent", "agent_id",
          ORCHESTRATOR, "/agents/{agent_id}", "agent.update"),
    Route("tool-call", "POST", "/v1/tools/{tool_id}/calls", "can_call", "tool", "tool_id",
          TOOLS, "/tools/{tool_id}/calls", "tool.invoke"),
    # the tool service lists only the tools the caller may call, and checks can_call on every MCP tools/call
    Route("tool-list", "GET", "/v1/tools", "member", "tenant", CALLER_TENANT, TOOLS, "/tools", "tool.list"),
    Route("tool-mcp", "POST", "/v1/mcp", "member", "tenant", CALLER_TENANT, TOOLS, "/mcp", "tool.mcp"),
    Route("memory-read", "GET", "/v1/memory/{collection_id}/records", "can_read", "memory_collection", "collection_id",
          MEMORY, "/collections/{collection_id}/records", "memory.read"),
    Route("memory-write", "POST", "/v1/memory/{collection_id}/records", "can_write", "memory_collection", "collection_id",
          MEMORY, "/collections/{collection_id}/records", "memory.write"),
    Route("memory-forget", "DELETE", "/v1/memory/{collection_id}/records/{document_id}", "can_write", "memory_collection",
          "collection_id", MEMORY, "/collections/{collection_id}/records/{document_id}", "memory.delete"),
    Route("memory-drop", "DELETE", "/v1/memory/{collection_id}", "can_write", "memory_collection", "collection_id",
          MEMORY, "/collections/{collection_id}", "memory.collection.delete"),
])
