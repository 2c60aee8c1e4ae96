"""Who is calling, may they, and the record of it.

The caller is what the gateway verified and forwarded: ``X-Soma-Tenant`` and ``X-Soma-Principal`` (an
OpenFGA user such as ``user:bob`` or ``agent:triage``). A request without both, or with values that are
not a tenant and a principal, is refused (401 ``caller_unidentified``): this service never guesses.

OpenFGA decides per request: ``can_read`` / ``can_write`` on ``memory_collection:<collection id>``. No answer
is never yes: OpenFGA unreachable, erroring or answering without a decision is 503
``authorization_unavailable``. Every write, every delete and every denial is an audit event in Core's
contract (components/core/audit/schema.md); events carry ids and counts, never document text or queries.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from soma_service import ServiceError
from soma_service.audit import AuditSink, actor_of, clean, rfc3339_ms, uuid7
from soma_service.openfga import AuthorizationUnavailable, OpenFgaClient

from .naming import TENANT

LOG = logging.getLogger("soma_memory.access")
SOURCE = "memory"
RESOURCE_TYPE = "memory_collection"
_PRINCIPAL = re.compile(r"^(user|service_account|agent|workflow):([A-Za-z0-9][A-Za-z0-9._~@/+=-]{0,199})$")


@dataclass(frozen=True)
class Caller:
    tenant: str
    principal: str        # the OpenFGA user, e.g. user:bob

    @property
    def actor(self) -> dict[str, str]:
        return actor_of(self.principal)


def caller_from(headers: Mapping[str, str]) -> Caller:
    tenant, principal = headers.get("x-soma-tenant"), headers.get("x-soma-principal")
    if not tenant or not principal:
        raise ServiceError(401, "caller_unidentified", "X-Soma-Tenant and X-Soma-Principal are required (set by the gateway)")
    if not TENANT.match(tenant) or not _PRINCIPAL.match(principal):
        raise ServiceError(401, "caller_unidentified", "X-Soma-Tenant or X-Soma-Principal is not a tenant and an OpenFGA principal")
    return Caller(tenant, principal)


def trace_id() -> str:
    try:
        from opentelemetry import trace

        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            return f"{span.trace_id:032x}"
    except ImportError:  # pragma: no cover - a dependency of the service base
        pass
    return os.urandom(16).hex()


def event(caller: Caller, action: str, collection: str, allowed: bool, *, reason: str | None = None,
          request_id: str = "-", **attributes: str) -> dict:
    body = {
        "event_id": uuid7(),
        "occurred_at": rfc3339_ms(datetime.now(timezone.utc)),
        "actor": caller.actor,
        "tenant": caller.tenant,
        "action": action,
        "resource": {"type": RESOURCE_TYPE, "id": clean(collection, 256)},
        "decision": "allow" if allowed else "deny",
        "trace_id": trace_id(),
        "source": SOURCE,
        "attributes": {"request.id": clean(request_id, 256), **{k: clean(str(v), 1024) for k, v in attributes.items()}},
    }
    if not allowed:
        body["reason"] = clean(reason or "denied", 1024)
    return body


class Guard:
    """Asks OpenFGA, records denials, and records completed writes and deletes."""

    def __init__(self, fga: OpenFgaClient, audit: AuditSink):
        self.fga = fga
        self.audit = audit

    async def authorize(self, caller: Caller, relation: str, collection: str, action: str, request_id: str) -> None:
        obj = f"{RESOURCE_TYPE}:{collection}"
        try:
            allowed = await self.fga.check(caller.principal, relation, obj)
        except AuthorizationUnavailable as exc:
            await self.record(event(caller, action, collection, False, request_id=request_id,
                                    reason=f"authorization_unavailable: {exc}", **{"reason.code": "authorization_unavailable"}))
            raise ServiceError(503, "authorization_unavailable", "OpenFGA gave no decision; nothing was done") from None
        if not allowed:
            await self.record(event(caller, action, collection, False, request_id=request_id,
                                    reason=f"not_permitted: {caller.principal} lacks {relation} on {obj}",
                                    **{"reason.code": "not_permitted"}))
            raise ServiceError(403, "not_permitted", f"{relation} on {obj} is not granted to {caller.principal}")

    async def allow(self, caller: Caller, action: str, collection: str, request_id: str, **attributes: str) -> None:
        """Record an allowed write or delete before it happens: a change that cannot be recorded is not made
        (503 ``audit_unavailable``)."""
        body = event(caller, action, collection, True, request_id=request_id, **attributes)
        try:
            await self.audit.emit(body)
        except Exception as exc:  # noqa: BLE001 - any sink failure means the change would go unrecorded
            LOG.error("audit event %s could not be handed to the sink: %s", body["event_id"], exc)
            raise ServiceError(503, "audit_unavailable", "the change cannot be recorded; nothing was done") from None

    async def record(self, body: dict) -> None:
        """Record a denial (the request is refused whether or not the sink takes it)."""
        try:
            await self.audit.emit(body)
        except Exception as exc:  # noqa: BLE001 - a lost denial is logged with its id; the refusal stands
            LOG.error("audit event %s could not be handed to the sink: %s", body["event_id"], exc)
