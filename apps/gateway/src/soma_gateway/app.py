"""The gateway as a SomaAgentHub service: ``soma_service.create_app`` with one FastAPI route per entry of
the route table (so the generated OpenAPI document lists the public API), each handled by ``Gateway``.

The dependencies (HTTP clients, Redis, the audit producer) open in the service's lifespan and are
registered as readiness checks: a gateway that cannot reach identity's keys, OpenFGA or Redis reports
not-ready (and refuses requests meanwhile: it fails closed).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import AsyncIterator

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from soma_service import ReadinessCheck, create_app, current_request_id

from soma_service.audit import AuditSink
from .forward import Forwarder
from .gateway import Gateway, Incoming
from .ratelimit import TenantRateLimiter, redis_client
from .routes import CALLER_TENANT, DEFAULT_ROUTES, RouteTable
from .settings import GatewaySettings
from .tokens import JwksCache, TokenRules, TokenVerifier

ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "object", "properties": {
    "code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}}}}}
DENIALS = {
    401: "token missing or invalid; `error.code` is the reason (token_expired, token_audience_invalid, ...)",
    403: "OpenFGA refused: `not_permitted`",
    404: "`route_not_found`",
    429: "`rate_limited`: the tenant is over its rate; Retry-After says when to retry",
    502: "`upstream_unavailable`",
    503: "fail closed: `identity_unavailable`, `authorization_unavailable`, `rate_limit_unavailable`, `audit_unavailable`",
    504: "`upstream_timeout`",
}


@dataclass
class Dependencies:
    """What the lifespan opens; tests may pass their own audit sink (to read the events back)."""

    audit: AuditSink | None = None


def build_app(settings: GatewaySettings, routes: RouteTable = DEFAULT_ROUTES, deps: Dependencies | None = None, **base) -> FastAPI:
    deps = deps or Dependencies()
    holder: dict[str, Gateway] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plain = httpx.AsyncClient(timeout=httpx.Timeout(settings.openfga_timeout_seconds),
                                  limits=httpx.Limits(max_connections=200, max_keepalive_connections=50))
        upstream_client = httpx.AsyncClient(timeout=httpx.Timeout(settings.upstream_timeout_seconds,
                                                                  connect=settings.upstream_connect_timeout_seconds),
                                            follow_redirects=False)
        redis = redis_client(settings.redis_url, max_connections=settings.redis_max_connections,
                             timeout=settings.redis_timeout_seconds,
                             password=settings.redis_password.get_secret_value() if settings.redis_password else None)
        audit = deps.audit or settings.audit_sink_for("soma-gateway")
        keys = JwksCache(settings.jwks_url, plain, ttl=settings.jwks_ttl_seconds,
                         refresh_interval=settings.jwks_refresh_interval_seconds, max_stale=settings.jwks_max_stale_seconds)
        rules = TokenRules(settings.jwt_issuer, settings.jwt_audience, settings.jwt_tenant_claim, settings.jwt_principal_claim,
                           tuple(settings.jwt_algorithms), settings.jwt_leeway_seconds)
        fga = settings.openfga_client(plain)
        limiter = TenantRateLimiter(redis, settings.rate_limit.limit(),
                                    {tenant: limit.limit() for tenant, limit in settings.rate_limit_tenants.items()})
        holder["gateway"] = Gateway(routes, TokenVerifier(keys, rules), fga, limiter,
                                    Forwarder(settings.upstreams, upstream_client, settings.upstream_stream_idle_timeout_seconds), audit)
        await audit.start()
        service = app.state.service
        service.add_check(ReadinessCheck("redis", functools.partial(_redis_answers, redis)))
        service.add_check(ReadinessCheck("identity-jwks", keys.ready))
        service.add_check(ReadinessCheck("openfga", functools.partial(_reachable, plain, settings.openfga_api_url.rstrip("/") + "/healthz")))
        try:
            yield
        finally:
            await audit.stop()
            await redis.aclose()
            await plain.aclose()
            await upstream_client.aclose()

    router = APIRouter()
    for route in routes.routes:
        router.add_api_route(route.path, _handler(holder), methods=[route.method], name=route.name,
                             summary=f"{route.action}: needs {route.relation} on {route.object_type}:"
                                     + ("{the caller's tenant}" if route.object_param == CALLER_TENANT else f"{{{route.object_param}}}"),
                             description=f"Forwarded to `{route.upstream}` at `{route.upstream_path}` when allowed.",
                             responses={status: {"description": text, "content": {"application/json": {"schema": ERROR_SCHEMA}}}
                                        for status, text in DENIALS.items()},
                             tags=["gateway"])
    return create_app(settings, routers=[router], lifespan=lifespan, title="SomaAgentHub gateway",
                      description="The public API facade: JWT, OpenFGA, per-tenant rate limits, audit, forwarding.", **base)


def _handler(holder: dict[str, Gateway]):
    async def handle(request: Request) -> Response:
        incoming = Incoming(method=request.method, path=request.scope["path"], query=request.url.query,
                            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
                            body=await request.body(), request_id=current_request_id.get() or "-")
        reply = await holder["gateway"].handle(incoming)
        if reply.stream is not None:
            return StreamingResponse(reply.stream, status_code=reply.status, headers=reply.headers)
        return Response(content=reply.body, status_code=reply.status, headers=reply.headers)
    return handle


async def _redis_answers(redis) -> bool:
    return bool(await redis.ping())


async def _reachable(client: httpx.AsyncClient, url: str) -> bool:
    answer = await client.get(url)
    return answer.status_code == 200
