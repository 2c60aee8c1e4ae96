"""The orchestrator as a SomaAgentHub service: ``soma_service.create_app`` with the API router; the
database pool, LangGraph's PostgreSQL checkpointer, OpenFGA client and audit sink open in the lifespan.

At start-up the schema is migrated (LangGraph's ``setup()`` and the orchestrator's own steps) and every
run left ``running`` by a previous process is continued from its last checkpoint. At shutdown the runs this
process drives are stopped where they are (their checkpoints are already written) for the next start.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import AsyncIterator, Mapping

import httpx
from fastapi import FastAPI
from langchain_core.tools import BaseTool
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

from soma_service import ReadinessCheck, create_app
from soma_service.audit import AuditSink

from .api import router
from .audit import Auditor
from .authz import Authorizer
from .models import ModelProvider, OpenAICompatibleProvider
from .registry import Compiler, DefinitionRegistry, default_compilers
from .runtime import Orchestrator
from .settings import OrchestratorSettings
from .steps import StepPolicy
from .toolservice import McpToolSource, StaticTools, ToolSource
from .store import Store, open_pool


@dataclass
class Dependencies:
    """What tests (or another deployment) may supply instead of the settings' defaults. ``tools`` are used
    only without ``SOMA_TOOLS_MCP_URL``; with it, runs get the tool service's tools over MCP."""

    audit: AuditSink | None = None
    models: ModelProvider | None = None
    tools: Mapping[str, BaseTool] = field(default_factory=dict)
    compilers: Mapping[str, Compiler] | None = None


def tool_source(settings: OrchestratorSettings, deps: Dependencies) -> ToolSource:
    if settings.tools_mcp_url:
        return McpToolSource(settings.tools_mcp_url, settings.tools_timeout_seconds)
    return StaticTools(deps.tools, settings.available_tools)


def build_app(settings: OrchestratorSettings, deps: Dependencies | None = None, **base) -> FastAPI:
    deps = deps or Dependencies()
    holder: dict[str, Orchestrator] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = open_pool(settings.database_dsn.get_secret_value(), None, settings.database_pool_size)
        await pool.open(wait=True, timeout=30)
        http = httpx.AsyncClient(timeout=httpx.Timeout(settings.openfga_timeout_seconds))
        audit = deps.audit or settings.audit_sink_for("soma-orchestrator")
        try:
            store = Store(pool)
            checkpointer = AsyncPostgresSaver(pool)
            await checkpointer.setup()
            await store.migrate()
            models = deps.models or OpenAICompatibleProvider(settings.model_base_url, settings.model_api_key, settings.model_name,
                                                             aliases=settings.model_aliases,
                                                             timeout_seconds=settings.model_timeout_seconds)
            fga = settings.openfga_client(http)
            tools = tool_source(settings, deps)
            registry = DefinitionRegistry(store, default_compilers() if deps.compilers is None else deps.compilers, tools)
            policy = StepPolicy(settings.step_timeout_seconds, settings.step_max_attempts, settings.step_backoff_seconds)
            tracer = app.state.telemetry.tracer_provider.get_tracer("soma_orchestrator")
            orchestrator = Orchestrator(store, registry, checkpointer, models, tools, Authorizer(fga), Auditor(audit), tracer,
                                        policy, settings.recursion_limit, settings.run_lease_seconds)
            holder["orchestrator"] = orchestrator
            app.state.orchestrator = orchestrator
            await audit.start()
            app.state.service.add_check(ReadinessCheck("postgresql", store.ping))
            app.state.service.add_check(ReadinessCheck("openfga", functools.partial(_reachable, http, settings.openfga_api_url.rstrip("/") + "/healthz")))
            await orchestrator.recover()
            orchestrator.begin()
            try:
                yield
            finally:
                await orchestrator.close()
                await audit.stop()
        finally:
            await http.aclose()
            await pool.close()

    return create_app(settings, routers=[router(holder)], lifespan=lifespan, title="SomaAgentHub orchestrator",
                      description="Workflows as LangGraph graphs, checkpointed in PostgreSQL; OpenFGA before every run and tool call.",
                      **base)


async def _reachable(client: httpx.AsyncClient, url: str) -> bool:
    return (await client.get(url)).status_code == 200
