"""The tool service's audit events, in Core's contract (components/core/audit/schema.md).

Two events per call that gets as far as authorization: the **decision** (action ``tool.invoke``, allow or
deny with the reason code first in ``reason``) and, for an allowed call, its **outcome** (action
``tool.invoke.result``, decision ``allow``, attribute ``outcome`` = ``ok``, ``invalid_input``, ``timeout``,
``memory_limit``, ``tool_error``, ``invalid_output``, ...). Attributes carry the tool's version, the transport
(``rest`` or ``mcp``), the sandbox's isolation, the duration and the request id: never the input, the output
or an error message a tool wrote (which could quote its input).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from soma_service.audit import PLATFORM_TENANT, actor_of, clean, rfc3339_ms, uuid7

SOURCE = "tools"
DECISION_ACTION = "tool.invoke"
OUTCOME_ACTION = "tool.invoke.result"


@dataclass(frozen=True)
class CallRecord:
    tenant: str | None
    principal: str | None          # "<type>:<id>", None when the caller could not be identified
    tool: str
    request_id: str
    trace_id: str
    transport: str


def decision_event(record: CallRecord, allowed: bool, reason_code: str, detail: str = "",
                   now: datetime | None = None) -> dict:
    event = _base(record, DECISION_ACTION, allowed, now)
    event["attributes"]["reason.code"] = reason_code
    if not allowed:
        event["reason"] = clean(f"{reason_code}: {detail}", 1024)
    return event


def outcome_event(record: CallRecord, outcome: str, *, version: str | None, seconds: float,
                  isolation: str | None = None, now: datetime | None = None) -> dict:
    event = _base(record, OUTCOME_ACTION, True, now)
    event["attributes"].update({"outcome": outcome, "duration_ms": f"{seconds * 1000:.1f}"})
    if version:
        event["attributes"]["tool.version"] = version
    if isolation:
        event["attributes"]["isolation"] = isolation
    return event


def _base(record: CallRecord, action: str, allowed: bool, now: datetime | None) -> dict:
    return {
        "event_id": uuid7(),
        "occurred_at": rfc3339_ms(now or datetime.now(timezone.utc)),
        "actor": actor_of(record.principal or "user:anonymous"),
        "tenant": record.tenant or PLATFORM_TENANT,
        "action": action,
        "resource": {"type": "tool", "id": clean(record.tool, 256)},
        "decision": "allow" if allowed else "deny",
        "trace_id": record.trace_id,
        "source": SOURCE,
        "attributes": {"transport": record.transport, "request.id": clean(record.request_id, 256)},
    }
