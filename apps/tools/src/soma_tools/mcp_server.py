"""The tool service as an MCP server (streamable HTTP at ``/mcp``, mounted in the FastAPI app).

The MCP path is the REST path with another envelope: ``tools/list`` shows the newest version of each tool
the caller may call (OpenFGA ``can_call``, asked per tool), ``tools/call`` goes through
``ToolService.call`` (same authorization, input and output schemas, sandbox, limits and audit events, with
``transport`` = ``mcp``). The caller is read from each HTTP request's ``X-Soma-Tenant`` /
``X-Soma-Principal``, which the gateway sets; a call without them is an MCP error result
(``caller_unknown``). A specific version is asked for with ``_meta: {"soma/version": "1.0.0"}``.

Stateless and JSON responses: every request stands alone (no session affinity needed across replicas)
and answers with one JSON body, which the gateway relays as it is. DNS-rebinding protection is off: the
service is reached only through the gateway, never from a browser.
"""
from __future__ import annotations

import json
from typing import Callable

from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from soma_service.context import accept_or_generate

from .service import Caller, CallRefused, ToolService
from .registry import ToolSpec

VERSION_META = "soma/version"


def _listing(spec: ToolSpec) -> types.Tool:
    output_schema = spec.output_schema if spec.output_schema.get("type") == "object" else None
    return types.Tool(name=spec.name, description=f"{spec.description} (version {spec.version})",
                      inputSchema=spec.input_schema if spec.input_schema.get("type") == "object" else {"type": "object"},
                      outputSchema=output_schema, _meta={VERSION_META: spec.version})


def _error(code: str, message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=f"{code}: {message}")], isError=True)


def build_mcp(service: Callable[[], ToolService], name: str = "soma-tools", version: str = "0.0.0") -> StreamableHTTPSessionManager:
    """``service`` returns the ToolService (it is built in the app's lifespan, after this)."""
    server: Server = Server(name, version=version)

    def caller() -> Caller:
        request = server.request_context.request
        headers = {k.lower(): v for k, v in request.headers.items()} if request is not None else {}
        return Caller.from_headers(headers, accept_or_generate(headers.get("x-request-id")))

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        try:
            return [_listing(spec) for spec in await service().visible(caller())]
        except CallRefused as exc:   # the server answers a JSON-RPC error carrying this message
            raise RuntimeError(f"{exc.code}: {exc.message}") from None

    async def call_tool(request: types.CallToolRequest) -> types.ServerResult:
        """Replaces the low-level server's own tools/call handler, which would validate against a tool cache
        shared by all callers (and refill it with a full listing on a miss): ToolService.call validates."""
        params = request.params
        meta = params.meta.model_extra if params.meta is not None and params.meta.model_extra else {}
        version = meta.get(VERSION_META)
        service_ = service()
        try:
            try:
                who = caller()
            except CallRefused as exc:
                http = server.request_context.request
                await service_.refuse_unknown_caller(params.name, exc, transport="mcp", request_id=accept_or_generate(
                    http.headers.get("x-request-id") if http else None))
            result = await service_.call(who, params.name, params.arguments or {},
                                         version=version if isinstance(version, str) else None, transport="mcp")
        except CallRefused as exc:
            return types.ServerResult(_error(exc.code, exc.message))
        structured = result.output if isinstance(result.output, dict) else None
        return types.ServerResult(types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result.output))], structuredContent=structured,
            isError=False, _meta={VERSION_META: result.version, "soma/isolation": result.isolation}))

    server.request_handlers[types.CallToolRequest] = call_tool
    return StreamableHTTPSessionManager(server, stateless=True, json_response=True)


class McpEndpoint:
    """The ASGI endpoint for ``/mcp`` (a plain ASGI app, so Starlette passes every method through)."""

    def __init__(self, manager: StreamableHTTPSessionManager):
        self.manager = manager

    async def __call__(self, scope, receive, send) -> None:
        await self.manager.handle_request(scope, receive, send)
