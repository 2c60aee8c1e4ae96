"""The tool service as a SomaAgentHub service: ``soma_service.create_app`` with the REST router, the MCP
endpoint at ``/mcp``, and a lifespan that builds the registry (tool modules, memory providers, external MCP
sources), opens OpenFGA's client, the audit sink and the sandbox's warm process.

A source that cannot be listed at start-up does not stop the service: its tools are missing and the
readiness check ``mcp-sources`` fails (naming it) and tries again, each time readiness is asked, until it loads.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from dataclasses import dataclass, field
from typing import AsyncIterator

import httpx
from fastapi import FastAPI
from starlette.routing import Route

from soma_service import ReadinessCheck, create_app
from soma_service.audit import AuditSink

from . import api
from .mcp_server import McpEndpoint, build_mcp
from .memory import load_providers, memory_search_tools
from .registry import Registry, ToolSpec
from .sandbox import SubprocessExecutor
from .service import ToolService
from .settings import ToolsSettings
from .sources import McpSource, load_source

LOG = logging.getLogger("soma_tools")


@dataclass
class Dependencies:
    """What tests may hand in: an audit sink to read back, tools and providers as objects."""

    audit: AuditSink | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    providers: dict = field(default_factory=dict)


def tools_from_modules(references: list[str]) -> list[ToolSpec]:
    specs = []
    for reference in references:
        module_name, _, attribute = reference.partition(":")
        specs += list(getattr(importlib.import_module(module_name), attribute or "TOOLS"))
    return specs


def build_app(settings: ToolsSettings, deps: Dependencies | None = None, **base) -> FastAPI:
    deps = deps or Dependencies()
    holder: dict[str, ToolService] = {}
    manager = build_mcp(lambda: holder["service"], version=settings.service_version)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = Registry([*tools_from_modules(settings.tool_modules), *deps.tools])
        providers = {**load_providers(settings.memory_providers), **deps.providers}
        for spec in memory_search_tools(providers, timeout_seconds=settings.memory_search_timeout_seconds):
            registry.add(spec)
        pending: list[McpSource] = list(settings.mcp_sources)

        async def sources_loaded() -> bool:
            for source in list(pending):
                try:
                    LOG.info("MCP source %s: %s", source.prefix, await load_source(source, registry))
                    pending.remove(source)
                except Exception as exc:  # noqa: BLE001 - reported by readiness, tried again
                    LOG.warning("MCP source %s (%s) not loaded: %s", source.prefix, source.url, exc)
            return not pending

        client = httpx.AsyncClient(timeout=httpx.Timeout(settings.openfga_timeout_seconds))
        fga = settings.openfga_client(client)
        audit = deps.audit or settings.audit_sink_for("soma-tools")
        executor = SubprocessExecutor(network_namespace=settings.sandbox_network_namespace, warm=settings.sandbox_warm,
                                      max_concurrent=settings.sandbox_max_concurrent)
        holder["service"] = ToolService(registry, executor, fga, audit)
        app.state.tools = holder["service"]
        await audit.start()
        await executor.start()
        await sources_loaded()
        app.state.service.add_check(ReadinessCheck("mcp-sources", sources_loaded))
        app.state.service.add_check(ReadinessCheck("openfga", functools.partial(_reachable, client, settings.openfga_api_url.rstrip("/") + "/healthz")))
        try:
            async with manager.run():
                yield
        finally:
            await executor.stop()
            await audit.stop()
            await client.aclose()

    application = create_app(settings, routers=[api.router(lambda: holder["service"])], lifespan=lifespan,
                              title="SomaAgentHub tool service",
                              description="Versioned JSON-schema tools, sandboxed, over REST and MCP (/mcp); OpenFGA and audit on every call.",
                              **base)
    application.router.routes.append(Route("/mcp", endpoint=McpEndpoint(manager), methods=["GET", "POST", "DELETE"]))
    return application


async def _reachable(client: httpx.AsyncClient, url: str) -> bool:
    return (await client.get(url)).status_code == 200
