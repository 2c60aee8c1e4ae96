"""``create_app``: the one way a SomaAgentHub service builds its ASGI app.

Every service gets the same probes, error bodies, request IDs, telemetry and lifecycle, and adds only its
routers, its readiness checks and its start/stop hooks.
"""

from __future__ import annotations

import contextlib
import logging
from http import HTTPStatus
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from .context import current_request_id
from .errors import install_error_handlers
from .health import ReadinessCheck, ServiceState, readiness
from .logs import configure_json_logging
from .middleware import ServiceMiddleware
from .settings import ServiceSettings
from .telemetry import Telemetry, configure_telemetry

log = logging.getLogger("soma_service")

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def create_app(
    settings: ServiceSettings,
    *,
    routers: Sequence[APIRouter] = (),
    readiness_checks: Iterable[ReadinessCheck] = (),
    lifespan: Lifespan | None = None,
    title: str | None = None,
    description: str = "",
    configure_logging: bool = True,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the service's FastAPI app.

    ``lifespan`` is the service's own start/stop hook (open pools, …); it runs inside the base's, so telemetry
    is up before it starts and still up while it stops. Readiness checks may also be added later with
    ``app.state.service.add_check`` (e.g. once a pool exists inside ``lifespan``).
    """
    if configure_logging:
        configure_json_logging(settings.service_name, settings.log_level)
    telemetry = telemetry or configure_telemetry(settings)
    state = ServiceState()
    for check in readiness_checks:
        state.add_check(check)

    @contextlib.asynccontextmanager
    async def base_lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if lifespan is not None:
                async with lifespan(app):
                    state.started = True
                    log.info("service started", extra={"version": settings.service_version})
                    yield
            else:
                state.started = True
                log.info("service started", extra={"version": settings.service_version})
                yield
        finally:
            state.draining = True
            log.info("service stopped")
            telemetry.shutdown()

    app = FastAPI(title=title or settings.service_name, version=settings.service_version, description=description,
                  lifespan=base_lifespan)
    app.state.settings = settings
    app.state.service = state
    app.state.telemetry = telemetry
    install_error_handlers(app)
    app.add_middleware(ServiceMiddleware, telemetry=telemetry, state=state)
    app.include_router(_probe_router(settings, state))
    for router in routers:
        app.include_router(router)
    _document_error_bodies(app)
    return app


ERROR_BODY_SCHEMA = {
    "type": "object", "required": ["error"], "title": "ErrorBody",
    "properties": {"error": {"type": "object", "required": ["code", "message", "request_id"], "properties": {
        "code": {"type": "string", "description": "stable, machine-readable"},
        "message": {"type": "string", "description": "for people; for 400 it names each offending field"},
        "request_id": {"type": "string", "description": "the X-Request-Id of the request"}}}},
}


def _document_error_bodies(app: FastAPI) -> None:
    """Make the OpenAPI document tell the truth: validation errors are 400 (not FastAPI's 422) and every
    error response has the one error body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["ErrorBody"] = ERROR_BODY_SCHEMA
        for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
            responses = operation.setdefault("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", {})
            for status, response in responses.items():
                if status[0] in "45":
                    response.setdefault("description", HTTPStatus(int(status)).phrase)
                    if status == "400":
                        response["description"] = "Invalid request; the message names each offending field"
                    response["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _probe_router(settings: ServiceSettings, state: ServiceState) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: every registered dependency check passes",
                responses={503: {"description": "not ready; the failing checks are listed"}})
    async def readyz(request: Request) -> Any:
        ready, report = await readiness(state, settings.readiness_timeout_seconds)
        if ready:
            return report
        failing = [c["name"] for c in report["checks"] if not c["ok"]]
        message = f"not ready: {report['status']}" + (f" ({', '.join(failing)} failing)" if failing else "")
        body = {"error": {"code": "not_ready", "message": message, "request_id": current_request_id.get()}, **report}
        return JSONResponse(body, status_code=503)

    return router
