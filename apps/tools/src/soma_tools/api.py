"""The REST call path: ``POST /tools/{tool_id}/calls`` (the gateway's route ``/v1/tools/{tool_id}/calls``,
which already asked OpenFGA ``can_call`` for the caller; the tool service asks again, since it also serves
MCP and trusts no path more than another) and ``GET /tools`` (the tools the caller may call)."""
from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from soma_service import ServiceError, current_request_id

from .registry import SEMVER
from .service import Caller, CallRefused, ToolService


class CallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: dict[str, Any] = Field(default_factory=dict, description="the tool's input; checked against its input schema")
    version: str | None = Field(default=None, pattern=SEMVER.pattern, description="an exact version; the newest when absent")


class CallAnswer(BaseModel):
    tool: str
    version: str
    output: Any
    isolation: str = Field(description="netns+guard, guard, inprocess or remote: how the call was confined")
    duration_ms: float


class ToolListing(BaseModel):
    name: str
    version: str
    versions: list[str]
    description: str
    input_schema: dict
    output_schema: dict
    timeout_seconds: float
    network: list[str] | None


def _caller(request: Request) -> Caller:
    try:
        return Caller.from_headers({k.lower(): v for k, v in request.headers.items()}, current_request_id.get())
    except CallRefused as exc:
        raise ServiceError(exc.status, exc.code, exc.message) from None


def router(service: Callable[[], ToolService]) -> APIRouter:
    api = APIRouter(tags=["tools"])

    @api.post("/tools/{tool_id}/calls", response_model=CallAnswer, summary="Call a tool (the newest version, or `version`)",
              responses={401: {}, 403: {}, 404: {}, 502: {}, 503: {}, 504: {}})
    async def call(tool_id: str, body: CallBody, request: Request) -> CallAnswer:
        tools = service()
        try:
            try:
                who = Caller.from_headers({k.lower(): v for k, v in request.headers.items()}, current_request_id.get())
            except CallRefused as exc:
                await tools.refuse_unknown_caller(tool_id, exc, request_id=current_request_id.get(), transport="rest")
            result = await tools.call(who, tool_id, body.input, version=body.version, transport="rest")
        except CallRefused as exc:
            raise ServiceError(exc.status, exc.code, exc.message) from None
        return CallAnswer(tool=result.tool, version=result.version, output=result.output, isolation=result.isolation,
                          duration_ms=round(result.seconds * 1000, 1))

    @api.get("/tools", response_model=list[ToolListing], summary="The tools the caller may call, newest versions",
             responses={401: {}, 503: {}})
    async def listing(request: Request) -> list[ToolListing]:
        tools = service()
        try:
            specs = await tools.visible(_caller(request))
        except CallRefused as exc:
            raise ServiceError(exc.status, exc.code, exc.message) from None
        return [ToolListing(name=s.name, version=s.version, versions=tools.registry.versions(s.name), description=s.description,
                            input_schema=s.input_schema, output_schema=s.output_schema, timeout_seconds=s.timeout_seconds,
                            network=list(s.network) if s.network is not None else None) for s in specs]

    return api
