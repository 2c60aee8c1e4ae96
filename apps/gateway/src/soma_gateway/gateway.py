"""The gateway's decision for one request, independent of the web framework.

Order: route (unknown: 404/405, nothing asked) -> token (401, or 503 when identity's keys cannot be had)
-> the tenant's rate limit (429 with Retry-After, or 503 when Redis cannot be asked) -> OpenFGA (403, or 503
when OpenFGA gives no answer) -> audit event -> forward. The rate limit comes before OpenFGA so that a
tenant over its budget costs OpenFGA nothing. Each authorization decision, allow or deny, writes exactly
one audit event; an allow whose event cannot be handed to the producer is not forwarded (503).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import AsyncIterator

from soma_service.audit import AuditSink

from .audit import Decision, event_for
from .forward import Forwarder, Streamed, TraceContext, UpstreamFailed, trace_context, upstream_headers
from soma_service.openfga import AuthorizationUnavailable, OpenFgaClient
from .ratelimit import RateLimitUnavailable, TenantRateLimiter
from .routes import MatchedRoute, RouteTable
from .tokens import KeysUnavailable, Principal, TokenRejected, TokenVerifier

LOG = logging.getLogger("soma_gateway")


@dataclass(frozen=True)
class Incoming:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class Reply:
    """``stream``: a streamed upstream answer's body (then ``body`` is empty), relayed as it arrives."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    reason_code: str = "allowed"
    stream: AsyncIterator[bytes] | None = None


def error_reply(status: int, code: str, message: str, request_id: str, **headers: str) -> Reply:
    """The platform's one error shape (the service base's): {"error": {"code", "message", "request_id"}}."""
    body = json.dumps({"error": {"code": code, "message": message, "request_id": request_id}}).encode()
    return Reply(status, body, {"content-type": "application/json", **headers}, code)


class Gateway:
    def __init__(self, routes: RouteTable, verifier: TokenVerifier, fga: OpenFgaClient, limiter: TenantRateLimiter,
                 forwarder: Forwarder, audit: AuditSink):
        self.routes, self.verifier, self.fga, self.limiter = routes, verifier, fga, limiter
        self.forwarder, self.audit = forwarder, audit

    async def handle(self, request: Incoming) -> Reply:
        matched = self.routes.match(request.method, request.path)
        if matched is None:
            allowed = self.routes.allowed_methods(request.path)
            if allowed:
                return error_reply(405, "method_not_allowed", f"{request.method} is not served on this path",
                                   request.request_id, allow=", ".join(allowed))
            return error_reply(404, "route_not_found", "no gateway route serves this path", request.request_id)
        trace = trace_context({k.lower(): v for k, v in request.headers})
        principal = None
        try:
            principal = await self.verifier.verify(request.header("authorization"))
            verdict = await self.limiter.take(principal.tenant)
            if not verdict.allowed:
                return await self._deny(request, matched, trace, principal, 429, "rate_limited",
                                        f"tenant {principal.tenant} is over its request rate",
                                        {"retry-after": str(verdict.retry_after_seconds)})
            fga_object = matched.fga_object_for(principal.tenant)
            if not await self.fga.check(principal.fga_user, matched.route.relation, fga_object):
                return await self._deny(request, matched, trace, principal, 403, "not_permitted",
                                        f"{principal.fga_user} lacks {matched.route.relation} on {fga_object}")
        except TokenRejected as exc:
            return await self._deny(request, matched, trace, None, 401, exc.reason, exc.detail,
                                    {"www-authenticate": f'Bearer error="invalid_token", error_description="{exc.reason}"'})
        except KeysUnavailable as exc:
            return await self._deny(request, matched, trace, None, 503, "identity_unavailable", str(exc))
        except RateLimitUnavailable as exc:
            return await self._deny(request, matched, trace, principal, 503, "rate_limit_unavailable", str(exc))
        except AuthorizationUnavailable as exc:
            return await self._deny(request, matched, trace, principal, 503, "authorization_unavailable", str(exc))
        allowed = self._decision(request, matched, trace, principal, True, 200, "allowed", "")
        try:
            await self.audit.emit(event_for(allowed))
        except Exception as exc:  # noqa: BLE001 - any producer failure means the allow is not on record
            LOG.error("audit event for an allow could not be handed to the producer: %s", exc)
            return error_reply(503, "audit_unavailable", "the decision cannot be recorded", request.request_id)
        return await self._forward(request, matched, trace, principal)

    async def _forward(self, request: Incoming, matched: MatchedRoute, trace: TraceContext, principal: Principal) -> Reply:
        headers = upstream_headers(request.headers, forward_authorization=matched.route.forward_authorization,
                                   request_id=request.request_id, trace=trace, tenant=principal.tenant,
                                   principal=principal.fga_user)
        try:
            answer = await self.forwarder.send(matched.route.upstream, request.method, matched.upstream_path(),
                                               request.query, headers, request.body)
        except UpstreamFailed as exc:
            return error_reply(exc.status, exc.reason, exc.detail, request.request_id)
        if isinstance(answer, Streamed):
            return Reply(answer.status, b"", answer.headers, stream=answer.chunks)
        return Reply(answer.status, answer.body, answer.headers)

    def _decision(self, request: Incoming, matched: MatchedRoute, trace: TraceContext, principal: Principal | None,
                  allowed: bool, status: int, reason: str, detail: str) -> Decision:
        return Decision(allowed=allowed, status=status, reason_code=reason, detail=detail, trace_id=trace.trace_id,
                        request_id=request.request_id, method=request.method, route=matched.route.name,
                        action=matched.route.action, resource_type=matched.route.object_type,
                        resource_id=matched.object_id_for(principal.tenant if principal else None),
                        tenant=principal.tenant if principal else None,
                        actor_type=principal.actor_type if principal else None,
                        actor_id=principal.subject if principal else None)

    async def _deny(self, request: Incoming, matched: MatchedRoute, trace: TraceContext, principal: Principal | None,
                    status: int, reason: str, detail: str, headers: dict[str, str] | None = None) -> Reply:
        try:
            await self.audit.emit(event_for(self._decision(request, matched, trace, principal, False, status, reason, detail)))
        except Exception as exc:  # noqa: BLE001 - the denial stands whether or not it was recorded
            LOG.error("audit event for a denial could not be handed to the producer: %s", exc)
        return error_reply(status, reason, detail, request.request_id, **(headers or {}))
