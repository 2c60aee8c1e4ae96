"""One audit event per gateway decision, in Core's contract (components/core/audit/schema.md, topic
``platform.audit.v1``); the sinks that ship it are the service base's (soma_service.audit).

Every decision is recorded, denials included: a 401 (no principal: actor ``user``/``anonymous`` in the
reserved tenant ``platform``, since an unverified token names no one), a 403, a 429 and the fail-closed
503s, each with the reason code first in ``reason``. No token, header value or body ever goes into an
event; attributes carry the route, method, status, reason code and request id only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from soma_service.audit import PLATFORM_TENANT, clean, rfc3339_ms, uuid7

SOURCE = "gateway"
ANONYMOUS = ("user", "anonymous")


@dataclass(frozen=True)
class Decision:
    """What the gateway decided, with what it knew at the time."""

    allowed: bool
    status: int
    reason_code: str          # "allowed" on allow
    detail: str               # a sentence for the reason (no secrets)
    trace_id: str
    request_id: str
    method: str
    route: str | None         # route name, None when no route matched
    action: str
    resource_type: str
    resource_id: str
    tenant: str | None = None
    actor_type: str | None = None
    actor_id: str | None = None


def event_for(decision: Decision, now: datetime | None = None) -> dict:
    actor_type, actor_id = (decision.actor_type, decision.actor_id) if decision.actor_id else ANONYMOUS
    attributes = {"http.method": decision.method, "http.status": str(decision.status),
                  "reason.code": decision.reason_code, "request.id": clean(decision.request_id, 256)}
    if decision.route:
        attributes["route"] = decision.route
    event = {
        "event_id": uuid7(),
        "occurred_at": rfc3339_ms(now or datetime.now(timezone.utc)),
        "actor": {"type": actor_type, "id": clean(actor_id, 256)},
        "tenant": decision.tenant or PLATFORM_TENANT,
        "action": decision.action,
        "resource": {"type": decision.resource_type, "id": clean(decision.resource_id, 256)},
        "decision": "allow" if decision.allowed else "deny",
        "trace_id": decision.trace_id,
        "source": SOURCE,
        "attributes": attributes,
    }
    if not decision.allowed:
        event["reason"] = clean(f"{decision.reason_code}: {decision.detail}", 1024)
    return event
