"""The orchestrator's audit events, in Core's contract (components/core/audit/schema.md).

One event when a run is refused or starts (``workflow.run.start``), when it finishes (``workflow.run.finish``,
with its status), when it is cancelled (``workflow.run.cancel``) or resumed (``workflow.run.resume``), and one
per tool call decision (``tool.invoke``, actor = the workflow, resource = the tool). Only identifiers and small
facts go in: never a prompt, a model answer, a tool's input or output, or a resume value.

An allow that cannot be recorded is not carried out (``AuditUnavailable``); a denial stands whether or not it
was recorded (a failure to record it is logged).
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

from opentelemetry import trace

from soma_service.audit import AuditSink, actor_of, clean, rfc3339_ms, uuid7

from .authz import Caller

LOG = logging.getLogger(__name__)
SOURCE = "orchestrator"


class AuditUnavailable(Exception):
    """The event for an allow could not be handed to the sink; the action is not carried out."""


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else uuid.uuid4().hex


def event(action: str, *, tenant: str, actor: dict[str, str], resource: tuple[str, str], allowed: bool,
          reason: str | None = None, attributes: dict[str, str] | None = None) -> dict:
    body = {
        "event_id": uuid7(),
        "occurred_at": rfc3339_ms(datetime.now(timezone.utc)),
        "actor": {"type": actor["type"], "id": clean(actor["id"], 256)},
        "tenant": tenant,
        "action": action,
        "resource": {"type": resource[0], "id": clean(resource[1], 256)},
        "decision": "allow" if allowed else "deny",
        "trace_id": current_trace_id(),
        "source": SOURCE,
        "attributes": {key: clean(str(value), 1024) for key, value in (attributes or {}).items()},
    }
    if not allowed:
        body["reason"] = clean(reason or "denied", 1024)
    elif reason:
        body["reason"] = clean(reason, 1024)
    return body


def run_event(action: str, caller: Caller, workflow_id: str, *, allowed: bool = True, reason: str | None = None,
              **attributes: str) -> dict:
    """An event about a run of ``workflow_id`` by ``caller`` (attributes: ``run.id``, ``run.status``, ...)."""
    return event(action, tenant=caller.tenant, actor=caller.actor, resource=("workflow", workflow_id), allowed=allowed,
                 reason=reason, attributes={key.replace("_", "."): value for key, value in attributes.items()})


def tool_event(caller: Caller, workflow_id: str, tool: str, *, allowed: bool, reason: str | None, run_id: str,
               agent: str) -> dict:
    """The workflow calling ``tool`` (actor as every service names it: ``actor_of``); the person who started the run is an attribute."""
    return event("tool.invoke", tenant=caller.tenant, actor=actor_of(f"workflow:{workflow_id}"),
                 resource=("tool", tool), allowed=allowed, reason=reason,
                 attributes={"run.id": run_id, "agent": agent, "run.caller": caller.principal})


class Auditor:
    def __init__(self, sink: AuditSink):
        self.sink = sink

    async def allow(self, body: dict) -> None:
        try:
            await self.sink.emit(body)
        except Exception as exc:  # noqa: BLE001 - any sink failure means the allow is not recorded
            raise AuditUnavailable(f"audit event could not be recorded: {type(exc).__name__}") from None

    async def deny(self, body: dict) -> None:
        try:
            await self.sink.emit(body)
        except Exception as exc:  # noqa: BLE001 - the denial stands either way
            LOG.error("audit event for a denial could not be recorded: %s", exc)

    async def record(self, body: dict) -> None:
        """A fact after the action (finish, cancel): logged on failure, never undoes what happened."""
        await self.deny(body)
