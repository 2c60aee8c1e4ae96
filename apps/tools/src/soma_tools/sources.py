"""External MCP servers as tool sources: their tools join the registry under ``<prefix>.<name>``.

At start-up (and again from the readiness check while a source has not loaded) each source is listed over
MCP's streamable HTTP transport; every tool becomes a ``remote`` ToolSpec whose call opens an MCP client
session to the source, calls the tool and returns its structured content (or its text as ``{"text": ...}``).
Such calls go through the same path as local tools (soma_tools.service): OpenFGA ``can_call`` on
``tool:<prefix>.<name>``, the input checked against the schema the source published, the source's timeout
(the MCP request is cancelled when it passes), both audit events. The tool service itself connects to the
source, so the Mesh phase's egress rules must allow the source's host.

The version of a remote tool is the source server's version when it is semantic, else ``0.0.0``; a source
that changes a tool under the same version is outside our control (the registry refuses to replace it
until restart, which is when sources are read again).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from mcp import ClientSession
import httpx
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel, ConfigDict, Field

from .registry import NAME, SEMVER, InvalidTool, Registry, ToolSpec
from .sandbox import ToolFailed

LOG = logging.getLogger("soma_tools.sources")


class McpSource(BaseModel):
    """One external MCP server, from settings (``SOMA_MCP_SOURCES``, a JSON list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="tools are listed as <prefix>.<tool>")
    url: str = Field(pattern=r"^https?://[^/]+", description="the server's streamable HTTP endpoint, e.g. http://docs-mcp:8000/mcp")
    timeout_seconds: float = Field(default=10.0, gt=0, le=600)


@dataclass
class _RemoteTool:
    source: McpSource
    name: str

    async def __call__(self, arguments: dict, context: Any) -> Any:
        async with _session(self.source) as session:
            result = await session.call_tool(self.name, arguments,
                                             read_timeout_seconds=timedelta(seconds=self.source.timeout_seconds))
        if result.isError:
            text = " ".join(getattr(block, "text", "") for block in result.content)[:500]
            raise ToolFailed("remote_error", f"{self.source.prefix}.{self.name}: {text}")
        if result.structuredContent is not None:
            return result.structuredContent
        return {"text": "\n".join(getattr(block, "text", "") for block in result.content)}


class _session:
    """An initialized client session to one source (transport and session closed together)."""

    def __init__(self, source: McpSource):
        self.source = source

    async def __aenter__(self) -> ClientSession:
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.source.timeout_seconds), follow_redirects=False)
        self._transport = streamable_http_client(self.source.url, http_client=self._http)
        read, write, _ = await self._transport.__aenter__()
        self._session = ClientSession(read, write, read_timeout_seconds=timedelta(seconds=self.source.timeout_seconds))
        await self._session.__aenter__()
        try:
            self.server_info = (await self._session.initialize()).serverInfo
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self._session

    async def __aexit__(self, *exc) -> None:
        try:
            await self._session.__aexit__(*exc)
        finally:
            try:
                await self._transport.__aexit__(*exc)
            finally:
                await self._http.aclose()


async def load_source(source: McpSource, registry: Registry) -> list[str]:
    """List the source's tools and register them; returns the registered refs. Raises on an unreachable source."""
    opened = _session(source)
    async with opened as session:
        listing = await session.list_tools()
    version = opened.server_info.version if SEMVER.match(opened.server_info.version or "") else "0.0.0"
    added = []
    for remote in listing.tools:
        name = f"{source.prefix}.{remote.name}"
        if not NAME.match(name):
            LOG.warning("MCP source %s: tool %r skipped (not a valid tool name)", source.prefix, remote.name)
            continue
        try:
            spec = registry.add(ToolSpec(
                name=name, version=version, description=remote.description or "", input_schema=remote.inputSchema,
                output_schema=remote.outputSchema or {}, kind="remote", timeout_seconds=source.timeout_seconds,
                network=(urlsplit(source.url).netloc,), call=_RemoteTool(source, remote.name)))
        except InvalidTool as exc:
            LOG.warning("MCP source %s: %s", source.prefix, exc)
            continue
        added.append(spec.ref)
    return added
