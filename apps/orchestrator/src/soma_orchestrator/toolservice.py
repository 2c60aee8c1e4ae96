"""Where a run's tools come from: the tool service over MCP (production), or a fixed set (tests, a deployment
without a tool service).

``McpToolSource`` reaches the tool service's MCP endpoint (``SOMA_TOOLS_MCP_URL``, streamable HTTP, stateless)
with ``langchain-mcp-adapters``, **as the workflow**: ``X-Soma-Tenant`` = the run's tenant and
``X-Soma-Principal`` = ``workflow:<id>``, the ``caller`` of tools in the OpenFGA model (the person who started
the run is not a tool caller; the orchestrator's own audit event names them). The tool service shows a
caller only the tools it may call, so what it lists for ``workflow:<id>`` is what it *offers* that workflow:
registration checks a definition's tool names against that list, and a run loads its tools from it.

A tool the definition names but the listing no longer shows (its grant was revoked after registration)
becomes a stand-in with an open argument schema: the orchestrator's own check refuses it (and audits the
refusal) before anything is sent; were the orchestrator's answer stale, the tool service refuses it too.

Failures say which service did not answer: ``ToolServiceUnavailable`` (registration: 503; a run's tool
loading or a tool call: the step fails with this message and is retried by the run's retry policy).
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import convert_mcp_tool_to_langchain_tool
from mcp import types
from opentelemetry import propagate

SERVER = "soma-tools"


class ToolServiceUnavailable(ConnectionError):
    """The tool service did not answer (unreachable, timed out, or not speaking MCP). A ``ConnectionError``:
    LangGraph's retry policy tries a step that met it again."""


class ToolSource(Protocol):
    async def names(self, tenant: str, workflow_id: str) -> frozenset[str]:
        """The tool names a definition of ``workflow_id`` in ``tenant`` may name (checked at registration)."""

    async def load(self, tenant: str, workflow_id: str, names: tuple[str, ...]) -> dict[str, BaseTool]:
        """The named tools for one run, called as ``workflow:<workflow_id>``; a name missing from the
        answer is a tool this source does not have."""


class StaticTools:
    """A fixed set of LangChain tools (``Dependencies(tools=...)``) plus names from ``SOMA_AVAILABLE_TOOLS``."""

    def __init__(self, tools: Mapping[str, BaseTool], extra_names: tuple[str, ...] = ()):
        self.tools = dict(tools)
        self.available = frozenset(extra_names) | frozenset(self.tools)

    async def names(self, tenant: str, workflow_id: str) -> frozenset[str]:
        return self.available

    async def load(self, tenant: str, workflow_id: str, names: tuple[str, ...]) -> dict[str, BaseTool]:
        return {name: self.tools[name] for name in names if name in self.tools}


class McpToolSource:
    """The tool service's tools over MCP; one short-lived client per question (the server is stateless)."""

    def __init__(self, url: str, timeout_seconds: float = 60.0):
        self.url, self.timeout_seconds = url, timeout_seconds

    def _client(self, tenant: str, workflow_id: str) -> MultiServerMCPClient:
        headers = {"X-Soma-Tenant": tenant, "X-Soma-Principal": f"workflow:{workflow_id}"}
        propagate.inject(headers)          # the run's trace: the tool service's audit events carry its trace id
        return MultiServerMCPClient(
            {SERVER: {"transport": "streamable_http", "url": self.url, "headers": headers,
                      "timeout": self.timeout_seconds, "sse_read_timeout": self.timeout_seconds}},
            handle_tool_errors=False,      # an MCP error result raises ToolException: the wrapper reports it
            tool_interceptors=[self._call_interceptor])

    async def _call_interceptor(self, request: Any, handler: Any) -> Any:
        try:
            return await handler(request)
        except ToolException:
            raise
        except Exception as exc:  # noqa: BLE001 - a transport failure, named as such
            raise ToolServiceUnavailable(f"the tool service at {self.url} did not answer the call of tool "
                                         f"{request.name!r}: {_reason(exc)}") from None

    async def _listing(self, tenant: str, workflow_id: str) -> list[BaseTool]:
        try:
            return await self._client(tenant, workflow_id).get_tools(server_name=SERVER)
        except Exception as exc:  # noqa: BLE001 - unreachable, refused, or not MCP: the service gave no list
            raise ToolServiceUnavailable(f"the tool service at {self.url} did not list the tools of "
                                         f"workflow:{workflow_id}: {_reason(exc)}") from None

    async def names(self, tenant: str, workflow_id: str) -> frozenset[str]:
        return frozenset(tool.name for tool in await self._listing(tenant, workflow_id))

    async def load(self, tenant: str, workflow_id: str, names: tuple[str, ...]) -> dict[str, BaseTool]:
        if not names:
            return {}
        listed = {tool.name: tool for tool in await self._listing(tenant, workflow_id)}
        return {name: listed.get(name) or self._not_offered(tenant, workflow_id, name) for name in names}

    def _not_offered(self, tenant: str, workflow_id: str, name: str) -> BaseTool:
        """Reached only if the orchestrator's check says yes; the tool service then decides again."""
        client = self._client(tenant, workflow_id)
        listing = types.Tool(name=name, description=f"{name} (not offered to workflow:{workflow_id} by the tool service now)",
                             inputSchema={"type": "object", "additionalProperties": True})
        return convert_mcp_tool_to_langchain_tool(None, listing, connection=client.connections[SERVER],
                                                  tool_interceptors=client.tool_interceptors, server_name=SERVER,
                                                  handle_tool_errors=False)


def _reason(exc: BaseException) -> str:
    """The innermost cause of an error (anyio task groups wrap transport errors in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def unloaded(name: str) -> BaseTool:
    """A tool in a graph built only to read a run's state or history: such a graph never runs."""

    async def call(**_: Any) -> Any:
        raise RuntimeError(f"tool {name!r} was not loaded: this graph was built to read a run, not to run it")

    return StructuredTool(name=name, description=name, args_schema={"type": "object"}, coroutine=call)
