"""``create_app``: the one way a SomaAgentHub service builds its ASGI app.

Every service gets the same probes, error bodies, request IDs, telemetry and lifecycle, and adds only its
routers, its readiness checks and its start/stop hooks.
"""

from __future__ import annotations

import contextlib
import logging
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
    return app


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
