"""One call path for every transport (REST and MCP) and every kind of tool (sandboxed, in-process, remote).

Order: the caller (``X-Soma-Tenant`` and ``X-Soma-Principal``, set by the gateway; 401 without them) -> the
tool name (400 if it cannot be an OpenFGA id) -> OpenFGA ``can_call`` on ``tool:<name>`` for the caller
(403, or 503 when OpenFGA gives no answer: fail closed) -> decision event -> the version (404) -> input
against the schema (400 with JSON paths) -> run with the tool's limits (504 on timeout, 502 on failure) ->
output against the schema (502) -> outcome event. Authorization comes before the lookup, so a caller learns
nothing about tools it may not call, not even whether they exist. An allow whose event cannot be handed to
the audit sink does not run (503), as in the gateway.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

from opentelemetry import trace

from soma_service.audit import AuditSink
from soma_service.openfga import AuthorizationUnavailable, OpenFgaClient

from .audit import CallRecord, decision_event, outcome_event
from .registry import NAME, Registry, SchemaViolation, ToolNotFound, ToolSpec
from .sandbox import SubprocessExecutor, ToolFailed

LOG = logging.getLogger("soma_tools")
_TENANT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PRINCIPAL = re.compile(r"^(user|service_account|agent|workflow):[A-Za-z0-9][A-Za-z0-9._~@/+=-]{0,199}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
LIST_CONCURRENCY = 4          # OpenFGA checks in flight at once for one listing
FAILURE_STATUS = {"timeout": (504, "tool_timeout"), "sandbox_busy": (503, "sandbox_busy")}


class CallRefused(Exception):
    """A call that produced no output, with the status and code the caller sees (both transports)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Caller:
    """Who calls, as the gateway verified it."""

    tenant: str
    principal: str
    request_id: str
    trace_id: str

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], request_id: str | None) -> "Caller":
        """``headers`` with lower-case names. Raises CallRefused(401) without a usable tenant and principal."""
        tenant, principal = headers.get("x-soma-tenant", ""), headers.get("x-soma-principal", "")
        if not _TENANT.match(tenant) or not _PRINCIPAL.match(principal):
            raise CallRefused(401, "caller_unknown", "X-Soma-Tenant and X-Soma-Principal (set by the gateway) are missing or malformed")
        return cls(tenant, principal, request_id or os.urandom(8).hex(), _trace_id(headers))


def _trace_id(headers: Mapping[str, str]) -> str:
    """The request's span (the service base traces every request; its trace continues the caller's), else
    the caller's ``traceparent`` (MCP handlers run outside the request's context), else a new trace."""
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        return f"{span.trace_id:032x}"
    found = _TRACEPARENT.match(headers.get("traceparent", ""))
    return found[1] if found and found[1] != "0" * 32 else os.urandom(16).hex()


@dataclass(frozen=True)
class ToolContext:
    """What an in-process or remote tool gets besides its input: who calls, and OpenFGA to ask more."""

    caller: Caller
    fga: OpenFgaClient
    timeout_seconds: float


@dataclass(frozen=True)
class CallResult:
    tool: str
    version: str
    output: Any
    isolation: str
    seconds: float


class ToolService:
    def __init__(self, registry: Registry, executor: SubprocessExecutor, fga: OpenFgaClient, audit: AuditSink):
        self.registry, self.executor, self.fga, self.audit = registry, executor, fga, audit

    async def visible(self, caller: Caller) -> list[ToolSpec]:
        """The newest version of each tool the caller may call (what MCP's tools/list shows); fail closed."""
        specs = self.registry.newest()
        gate = asyncio.Semaphore(LIST_CONCURRENCY)

        async def may_call(spec: ToolSpec) -> bool:
            async with gate:
                return await self.fga.check(caller.principal, "can_call", f"tool:{spec.name}")
        try:
            answers = await asyncio.gather(*(may_call(spec) for spec in specs))
        except AuthorizationUnavailable as exc:
            raise CallRefused(503, "authorization_unavailable", str(exc)) from None
        return [spec for spec, allowed in zip(specs, answers) if allowed]

    async def call(self, caller: Caller, name: str, arguments: Any, *, version: str | None = None,
                   transport: str = "rest") -> CallResult:
        record = CallRecord(caller.tenant, caller.principal, name, caller.request_id, caller.trace_id, transport)
        if not NAME.match(name):
            await self._deny(record, 400, "invalid_tool_name", f"{name[:64]!r} is not a tool name")
        try:
            allowed = await self.fga.check(caller.principal, "can_call", f"tool:{name}")
        except AuthorizationUnavailable as exc:
            await self._deny(record, 503, "authorization_unavailable", str(exc))
        if not allowed:
            await self._deny(record, 403, "not_permitted", f"{caller.principal} lacks can_call on tool:{name}")
        try:
            await self.audit.emit(decision_event(record, True, "allowed"))
        except Exception as exc:  # noqa: BLE001 - an allow that is not on record does not run
            LOG.error("audit event for an allowed tool call could not be handed to the sink: %s", exc)
            raise CallRefused(503, "audit_unavailable", "the decision cannot be recorded") from None
        started = time.monotonic()
        spec = None
        try:
            spec = self.registry.resolve(name, version)
            spec.check_input(arguments)
            output, isolation = await self._run(spec, arguments, caller)
            try:
                spec.check_output(output)
            except SchemaViolation as exc:
                raise CallRefused(502, "invalid_output", f"tool {spec.ref} answered outside its output schema: "
                                  + "; ".join(exc.problems)) from None
        except ToolNotFound as exc:
            await self._outcome(record, "not_found", spec, started)
            raise CallRefused(404, "tool_not_found", str(exc)) from None
        except SchemaViolation as exc:
            await self._outcome(record, "invalid_input", spec, started)
            raise CallRefused(400, "invalid_input", f"input for {spec.ref} does not match its schema: "
                              + "; ".join(exc.problems)) from None
        except ToolFailed as exc:
            await self._outcome(record, exc.kind, spec, started, exc.isolation)
            status, code = FAILURE_STATUS.get(exc.kind, (502, "tool_failed"))
            raise CallRefused(status, code, f"{exc.kind}: {exc.message}") from None
        except CallRefused as exc:
            await self._outcome(record, exc.code, spec, started)
            raise
        await self._outcome(record, "ok", spec, started, isolation)
        return CallResult(spec.name, spec.version, output, isolation, time.monotonic() - started)

    async def refuse_unknown_caller(self, name: str, refusal: CallRefused, *, request_id: str | None, transport: str) -> None:
        """Records a call that came without the gateway's identity headers (actor ``user``/``anonymous`` in the
        tenant ``platform``, as the gateway records an unverified request), then raises ``refusal``."""
        record = CallRecord(None, None, name if NAME.match(name) else "-", request_id or "-", os.urandom(16).hex(), transport)
        await self._deny(record, refusal.status, refusal.code, refusal.message)

    async def _run(self, spec: ToolSpec, arguments: dict, caller: Caller) -> tuple[Any, str]:
        if spec.kind == "subprocess":
            outcome = await self.executor.run(spec, arguments)
            return outcome.output, outcome.isolation
        context = ToolContext(caller, self.fga, spec.timeout_seconds)
        try:
            output = await asyncio.wait_for(spec.call(arguments, context), timeout=spec.timeout_seconds)
        except asyncio.TimeoutError:
            raise ToolFailed("timeout", f"tool {spec.ref} did not finish within {spec.timeout_seconds:g} s and was cancelled") from None
        except (CallRefused, ToolFailed):
            raise
        except Exception as exc:  # noqa: BLE001 - an adapter's or a remote server's failure is the tool's
            raise ToolFailed("tool_error", f"{type(exc).__name__}: {exc}") from None
        return output, spec.kind

    async def _deny(self, record: CallRecord, status: int, code: str, detail: str) -> None:
        try:
            await self.audit.emit(decision_event(record, False, code, detail))
        except Exception as exc:  # noqa: BLE001 - the denial stands whether or not it was recorded
            LOG.error("audit event for a denied tool call could not be handed to the sink: %s", exc)
        raise CallRefused(status, code, detail)

    async def _outcome(self, record: CallRecord, outcome: str, spec: ToolSpec | None, started: float,
                       isolation: str | None = None) -> None:
        try:
            await self.audit.emit(outcome_event(record, outcome, version=spec.version if spec else None,
                                                seconds=time.monotonic() - started, isolation=isolation))
        except Exception as exc:  # noqa: BLE001 - the call has happened; its record is logged instead
            LOG.error("audit event for a tool call's outcome could not be handed to the sink: %s (outcome %s)", exc, outcome)
