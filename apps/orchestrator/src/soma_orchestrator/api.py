"""The orchestrator's HTTP API (reached only through the gateway, which verifies the caller and asks OpenFGA
``can_edit`` / ``can_view`` / ``can_run`` on ``workflow:<id>`` first).

Runs are addressed under their workflow (``/workflows/{workflow_id}/runs/{run_id}``) so the gateway can
derive its OpenFGA object from the path alone, and a run of another workflow or tenant is simply not found.

| method and path | what |
| --- | --- |
| ``PUT /workflows/{id}`` | register a definition ``{"kind", "source", "source_name"?}``: compiled first, stored as a new version |
| ``GET /workflows/{id}`` | the latest version: kind, name, agents, tools, source |
| ``POST /workflows/{id}/runs`` | start a run ``{"input": {...}}`` (OpenFGA ``can_run`` for the caller) → 201 |
| ``GET /workflows/{id}/runs/{run}`` | status, state values, next steps, pending interrupts |
| ``GET /workflows/{id}/runs/{run}/history`` | every checkpoint, oldest first |
| ``GET /workflows/{id}/runs/{run}/events`` | Server-Sent Events from ``Last-Event-ID`` (or ``?after=``) until the run stops |
| ``POST /workflows/{id}/runs/{run}/resume`` | ``{"value", "interrupt_id"?}`` for an interrupted run |
| ``POST /workflows/{id}/runs/{run}/cancel`` | stop a running or interrupted run for good |
"""
from __future__ import annotations

import json
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from soma_service import ServiceError

from .authz import OBJECT_ID, Caller
from .definitions import DefinitionError
from .registry import UnknownKind
from .runtime import Orchestrator, RunError, describe_run
from .store import jsonable
from .toolservice import ToolServiceUnavailable

WorkflowId = Annotated[str, Path(pattern=OBJECT_ID.pattern, description="an OpenFGA object id: workflow:<id>")]
RunId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]
MAX_SOURCE = 256 * 1024
UNIDENTIFIED = {401: {"description": "`caller_unidentified`: X-Soma-Tenant / X-Soma-Principal missing or malformed"}}
NOT_FOUND = {404: {"description": "`not_found`: no such workflow or run in the caller's tenant"}}
REFUSED = {403: {"description": "`not_permitted`: OpenFGA refused can_run"},
           503: {"description": "`authorization_unavailable` (OpenFGA gave no answer) or `audit_unavailable`"}}
TOOLS_DOWN = {503: {"description": "`tool_service_unavailable`: the tool service did not say which tools it offers the workflow"}}
CONFLICT = {409: {"description": "`run_not_interrupted` / `run_finished` / `conflict`: not possible in the run's (or id's) state"}}
# set by the gateway from the verified token; module level so FastAPI resolves them (postponed annotations)
Tenant = Annotated[str | None, Header(alias="X-Soma-Tenant", description="the caller's tenant (set by the gateway)")]
Principal = Annotated[str | None, Header(alias="X-Soma-Principal", description="the caller as an OpenFGA user (set by the gateway)")]


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="how the source is written: `crew` for YAML crews")
    source: str = Field(min_length=1, max_length=MAX_SOURCE, description="the definition's text (e.g. the crew YAML)")
    source_name: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f]*$",
                                    description="a file name errors refer to (default `<workflow_id>.<kind>.yaml`)")


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any] = Field(default_factory=dict, description="the graph's input state")


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Any = Field(description="what the waiting step's interrupt() returns")
    interrupt_id: str | None = Field(default=None, max_length=128, description="which interrupt, when several wait")


def caller_of(tenant: str | None, principal: str | None) -> Caller:
    try:
        return Caller.parse(tenant, principal)
    except ValueError as exc:
        raise ServiceError(401, "caller_unidentified", str(exc)) from None


def router(holder: dict[str, Orchestrator]) -> APIRouter:
    api = APIRouter(tags=["orchestrator"])

    def orchestrator() -> Orchestrator:
        return holder["orchestrator"]

    async def guarded(coro):
        try:
            return await coro
        except RunError as exc:
            raise ServiceError(exc.status, exc.code, exc.message) from None

    @api.put("/workflows/{workflow_id}", responses={**UNIDENTIFIED, **CONFLICT, **TOOLS_DOWN}, summary="Register a workflow definition (a new version)")
    async def register(workflow_id: WorkflowId, body: RegisterBody, x_soma_tenant: Tenant = None,
                       x_soma_principal: Principal = None) -> dict:
        caller = caller_of(x_soma_tenant, x_soma_principal)
        registry = orchestrator().registry
        existing = await registry.store.version(workflow_id)
        if existing is not None and existing.tenant != caller.tenant:
            raise ServiceError(409, "conflict", f"workflow id {workflow_id!r} belongs to another tenant")
        source_name = body.source_name or f"{workflow_id}.{body.kind}.yaml"
        try:
            version, definition = await registry.register(workflow_id, caller.tenant, body.kind, body.source, source_name,
                                                          caller.principal)
        except UnknownKind as exc:
            raise ServiceError(400, "invalid_request", f"body.kind: {exc}") from None
        except DefinitionError as exc:
            raise ServiceError(400, "invalid_definition", str(exc)) from None
        except ToolServiceUnavailable as exc:
            raise ServiceError(503, "tool_service_unavailable", f"{exc}; nothing was registered") from None
        return {"workflow_id": workflow_id, "version": version.version, "kind": version.kind, "name": definition.name,
                "agents": list(definition.agents), "tools": list(definition.tools),
                "registered_at": version.registered_at.isoformat()}

    @api.get("/workflows/{workflow_id}", responses={**UNIDENTIFIED, **NOT_FOUND}, summary="The latest registered version of a workflow")
    async def read_workflow(workflow_id: WorkflowId, x_soma_tenant: Tenant = None, x_soma_principal: Principal = None) -> dict:
        caller = caller_of(x_soma_tenant, x_soma_principal)
        registry = orchestrator().registry
        version = await registry.store.version(workflow_id)
        if version is None or version.tenant != caller.tenant:
            raise ServiceError(404, "not_found", f"no workflow {workflow_id!r}")
        definition = await registry.definition(version)
        return {"workflow_id": workflow_id, "version": version.version, "kind": version.kind, "name": definition.name,
                "agents": list(definition.agents), "tools": list(definition.tools), "source_name": version.source_name,
                "source": version.source, "registered_by": version.registered_by,
                "registered_at": version.registered_at.isoformat()}

    @api.post("/workflows/{workflow_id}/runs", responses={**UNIDENTIFIED, **NOT_FOUND, **REFUSED}, status_code=201, summary="Start a run (OpenFGA can_run for the caller)")
    async def start(workflow_id: WorkflowId, body: StartBody, x_soma_tenant: Tenant = None,
                    x_soma_principal: Principal = None) -> dict:
        caller = caller_of(x_soma_tenant, x_soma_principal)
        run = await guarded(orchestrator().start(caller, workflow_id, body.input))
        return describe_run(run)

    @api.get("/workflows/{workflow_id}/runs/{run_id}", responses={**UNIDENTIFIED, **NOT_FOUND}, summary="A run's status and state")
    async def state(workflow_id: WorkflowId, run_id: RunId, x_soma_tenant: Tenant = None,
                    x_soma_principal: Principal = None) -> dict:
        return await guarded(orchestrator().state(caller_of(x_soma_tenant, x_soma_principal), workflow_id, run_id))

    @api.get("/workflows/{workflow_id}/runs/{run_id}/history", responses={**UNIDENTIFIED, **NOT_FOUND}, summary="A run's checkpoints, oldest first")
    async def history(workflow_id: WorkflowId, run_id: RunId, x_soma_tenant: Tenant = None,
                      x_soma_principal: Principal = None) -> dict:
        caller = caller_of(x_soma_tenant, x_soma_principal)
        return {"run_id": run_id, "checkpoints": jsonable(await guarded(orchestrator().history(caller, workflow_id, run_id)))}

    @api.get("/workflows/{workflow_id}/runs/{run_id}/events", summary="The run's events as Server-Sent Events",
             response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}, **UNIDENTIFIED, **NOT_FOUND})
    async def events(workflow_id: WorkflowId, run_id: RunId, request: Request, after: Annotated[int, Query(ge=0)] = 0,
                     last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
                     x_soma_tenant: Tenant = None, x_soma_principal: Principal = None) -> StreamingResponse:
        caller = caller_of(x_soma_tenant, x_soma_principal)
        if last_event_id is not None:
            if not last_event_id.isdigit():
                raise ServiceError(400, "invalid_request", "header.Last-Event-ID: not an event id (a number)")
            after = int(last_event_id)
        o = orchestrator()
        await guarded(o.run_for(caller, workflow_id, run_id))

        async def stream() -> AsyncIterator[bytes]:
            async for event in o.events(caller, workflow_id, run_id, after):
                if await request.is_disconnected():
                    return
                data = json.dumps({"seq": event.seq, "kind": event.kind, "at": event.at.isoformat(), "data": event.data},
                                  separators=(",", ":"))
                yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @api.post("/workflows/{workflow_id}/runs/{run_id}/resume", responses={**UNIDENTIFIED, **NOT_FOUND, **REFUSED, **CONFLICT}, summary="Resume an interrupted run")
    async def resume(workflow_id: WorkflowId, run_id: RunId, body: ResumeBody, x_soma_tenant: Tenant = None,
                     x_soma_principal: Principal = None) -> dict:
        caller = caller_of(x_soma_tenant, x_soma_principal)
        return describe_run(await guarded(orchestrator().resume(caller, workflow_id, run_id, body.value, body.interrupt_id)))

    @api.post("/workflows/{workflow_id}/runs/{run_id}/cancel", responses={**UNIDENTIFIED, **NOT_FOUND, **REFUSED, **CONFLICT}, summary="Cancel a running or interrupted run")
    async def cancel(workflow_id: WorkflowId, run_id: RunId, x_soma_tenant: Tenant = None,
                     x_soma_principal: Principal = None) -> dict:
        caller = caller_of(x_soma_tenant, x_soma_principal)
        return describe_run(await guarded(orchestrator().cancel(caller, workflow_id, run_id)))

    return api
