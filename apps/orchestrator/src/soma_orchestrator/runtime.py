"""Running definitions: start, resume, cancel, recover after a restart, and read what a run did.

A run is a LangGraph thread (``thread_id`` = run id) whose checkpoints live in PostgreSQL
(``langgraph-checkpoint-postgres``), written synchronously after every step (``durability="sync"``): when
the process dies, the next one finds the run ``running`` in ``orchestrator_runs`` and continues it from its
last checkpoint (``recover``), re-running only the step that was under way. A step waiting for a person
calls LangGraph's ``interrupt()``: the run becomes ``interrupted`` and continues with ``resume`` (a
``Command(resume=value)``). ``cancel`` stops a running task (or closes an interrupted run) for good.

Each run builds its graph from its definition against a per-run ``Runtime`` (models, authorized tools),
with the runtime's step policy (timeout, retries, spans) applied to every node. Its progress is appended to
``orchestrator_run_events`` for the event stream.

One process drives a given run: the one holding its lease (``owner``, ``lease_until`` in
``orchestrator_runs``), renewed every third of ``lease_seconds``. A process that stops gives its leases up; one
that dies lets them run out; either way another replica (or the next process) claims the run and continues
it. The same keeper stops a run here when another replica cancelled it.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Any, AsyncIterator, Mapping

from langchain_core.tools import BaseTool
from langgraph.errors import NodeTimeoutError
from langgraph.types import Command
from opentelemetry import trace

from .audit import AuditUnavailable, Auditor, run_event
from .authz import AuthorizationUnavailable, Authorizer, Caller
from .models import ModelProvider
from .registry import DefinitionRegistry
from .steps import StepPolicy, instrument
from .store import TERMINAL, RunEvent, RunRecord, Store, jsonable
from .tools import AuthorizedTool, ToolGuard
from .toolservice import ToolServiceUnavailable, ToolSource, unloaded

LOG = logging.getLogger(__name__)


class RunError(Exception):
    """A refusal the API shows as ``status`` / ``code``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class RunRuntime:
    """The ``Runtime`` a definition builds one run's graph with.

    ``tools``: the run's tools as the tool source gave them (loaded as ``workflow:<id>`` when the run is driven),
    or ``None`` for a graph built only to read a run's state or history (never run, so nothing is loaded).
    Each is wrapped with the orchestrator's own ``can_call`` check and audit event: the orchestrator records the
    decision per run (which run, agent and person it was for; a refusal the agent can read), and the tool
    service, which sees only ``workflow:<id>``, enforces it again for every caller and transport.
    """

    def __init__(self, orchestrator: "Orchestrator", run: RunRecord, loop: asyncio.AbstractEventLoop,
                 tools: Mapping[str, BaseTool] | None = None):
        self.orchestrator, self.run, self.loop, self.tools = orchestrator, run, loop, tools

    def model_for(self, agent: str, model: str | None = None):
        return self.orchestrator.models.model_for(agent, model)

    def tools_for(self, agent: str, names: tuple[str, ...]) -> Mapping[str, BaseTool]:
        wrapped = {}
        for name in names:
            tool = unloaded(name) if self.tools is None else self.tools.get(name)
            if tool is None:
                raise LookupError(f"tool {name!r} is not available to this orchestrator (available: {sorted(self.tools)})")
            guard = ToolGuard(self.orchestrator.authorizer, self.orchestrator.auditor, Caller(self.run.tenant, self.run.caller),
                              self.run.workflow_id, self.run.run_id, agent, self.loop)
            wrapped[name] = AuthorizedTool.wrap(tool, guard)
        return wrapped


class Orchestrator:
    def __init__(self, store: Store, registry: DefinitionRegistry, checkpointer: Any, models: ModelProvider,
                 tools: ToolSource, authorizer: Authorizer, auditor: Auditor, tracer: trace.Tracer,
                 policy: StepPolicy = StepPolicy(), recursion_limit: int = 50, lease_seconds: float = 30.0):
        self.store, self.registry, self.checkpointer = store, registry, checkpointer
        self.models, self.tools, self.authorizer, self.auditor = models, tools, authorizer, auditor
        self.tracer, self.policy, self.recursion_limit = tracer, policy, recursion_limit
        self._tasks: dict[str, asyncio.Task] = {}
        self._cancelling: set[str] = set()
        self._signals: dict[str, asyncio.Event] = {}
        self.owner = f"{socket.gethostname()}/{uuid.uuid4().hex[:12]}"
        self.lease_seconds = lease_seconds
        self._maintenance: asyncio.Task | None = None

    # --- authorization ------------------------------------------------------------------------------------
    async def _authorize(self, caller: Caller, workflow_id: str, action: str, **attributes: str) -> None:
        try:
            allowed = await self.authorizer.can_run(caller, workflow_id)
        except AuthorizationUnavailable as exc:
            await self.auditor.deny(run_event(action, caller, workflow_id, allowed=False,
                                              reason=f"authorization_unavailable: {exc}", **attributes))
            raise RunError(503, "authorization_unavailable", "OpenFGA gave no answer; nothing was done") from None
        if not allowed:
            await self.auditor.deny(run_event(action, caller, workflow_id, allowed=False,
                                              reason=f"not_permitted: {caller.principal} may not run workflow:{workflow_id}",
                                              **attributes))
            raise RunError(403, "not_permitted", f"{caller.principal} may not run workflow {workflow_id!r}")

    async def _record_allow(self, body: dict) -> None:
        try:
            await self.auditor.allow(body)
        except AuditUnavailable as exc:
            raise RunError(503, "audit_unavailable", f"{exc}; nothing was done") from None

    # --- commands -----------------------------------------------------------------------------------------
    async def start(self, caller: Caller, workflow_id: str, inputs: dict[str, Any]) -> RunRecord:
        await self._authorize(caller, workflow_id, "workflow.run.start")
        workflow = await self.store.version(workflow_id)
        if workflow is None or workflow.tenant != caller.tenant:
            raise RunError(404, "not_found", f"no workflow {workflow_id!r}")
        await self.registry.definition(workflow)      # compiles (cached) before anything is recorded
        run_id = str(uuid.uuid4())
        await self._record_allow(run_event("workflow.run.start", caller, workflow_id, run_id=run_id,
                                           workflow_version=str(workflow.version)))
        run = await self.store.create_run(run_id, workflow, caller.principal, self.owner, self.lease_seconds)
        await self._event(run_id, "run.started", {"workflow_id": workflow_id, "version": workflow.version, "input": inputs})
        self._launch(run, inputs)
        return run

    async def resume(self, caller: Caller, workflow_id: str, run_id: str, value: Any, interrupt_id: str | None = None) -> RunRecord:
        run = await self.run_for(caller, workflow_id, run_id)
        await self._authorize(caller, workflow_id, "workflow.run.resume", run_id=run_id)
        if run.status != "interrupted":
            raise RunError(409, "run_not_interrupted", f"run {run_id} is {run.status}; only an interrupted run can be resumed")
        await self._record_allow(run_event("workflow.run.resume", caller, workflow_id, run_id=run_id))
        if not await self.store.transition(run_id, "running", "run.resumed", {"by": caller.principal},
                                           unless=("running", *TERMINAL), owner=self.owner, lease=self.lease_seconds):
            raise RunError(409, "run_not_interrupted", f"run {run_id} was resumed or closed meanwhile")
        self._signal(run_id)
        self._launch(run, Command(resume={interrupt_id: value} if interrupt_id else value))
        return await self.store.run(run_id)

    async def cancel(self, caller: Caller, workflow_id: str, run_id: str) -> RunRecord:
        run = await self.run_for(caller, workflow_id, run_id)
        await self._authorize(caller, workflow_id, "workflow.run.cancel", run_id=run_id)
        if run.terminal:
            raise RunError(409, "run_finished", f"run {run_id} is already {run.status}")
        await self._record_allow(run_event("workflow.run.cancel", caller, workflow_id, run_id=run_id,
                                           run_status=run.status))
        self._cancelling.add(run_id)
        try:
            task = self._tasks.get(run_id)
            if task is not None:
                task.cancel()
                await asyncio.wait({task})
            moved = await self.store.transition(run_id, "cancelled", "run.cancelled", {"by": caller.principal},
                                                f"cancelled by {caller.principal}", unless=TERMINAL)
        finally:
            self._cancelling.discard(run_id)
        if not moved:
            now = await self.store.run(run_id)
            raise RunError(409, "run_finished", f"run {run_id} is already {now.status}")
        self._signal(run_id)
        return await self.store.run(run_id)

    async def recover(self) -> list[str]:
        """Continue every run left ``running`` by a process that stopped or died (its lease ran out, or was
        given up at shutdown), from its last checkpoint."""
        recovered = []
        for run in await self.store.claim_orphans(self.owner, self.lease_seconds):
            if run.run_id not in self._tasks:
                LOG.info("continuing run from its last checkpoint", extra={"run_id": run.run_id})
                self._launch(run, None, recovering=True)
                recovered.append(run.run_id)
        return recovered

    def begin(self) -> None:
        """Start the lease keeper: every third of a lease it renews this process's runs, stops those another
        replica cancelled (or took over), and continues orphans of replicas that died."""
        self._maintenance = asyncio.get_running_loop().create_task(self._maintain(), name="run-leases")

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                held = await self.store.renew(self.owner, list(self._tasks), self.lease_seconds)
                for run_id, task in list(self._tasks.items()):
                    if held.get(run_id, "gone") != "running":      # cancelled elsewhere, or no longer ours
                        self._cancelling.add(run_id)
                        task.cancel()
                await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop the keeper
                LOG.warning("run leases not renewed: %s", exc)

    async def close(self) -> None:
        """Stop driving runs (the process is going away); they stay ``running``, their leases are given up,
        and the next process (or another replica) continues them."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            await asyncio.wait({self._maintenance})
        tasks = dict(self._tasks)
        for task in tasks.values():
            task.cancel()
        if tasks:
            await asyncio.wait(tasks.values())
            await self.store.release(self.owner, list(tasks))

    async def wait(self, run_id: str) -> None:
        """Until this process stops driving ``run_id`` (tests, benchmarks)."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.wait({task})

    # --- driving ------------------------------------------------------------------------------------------
    def _launch(self, run: RunRecord, payload: Any, recovering: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._drive(run, payload, recovering), name=f"run-{run.run_id}")
        self._tasks[run.run_id] = task
        task.add_done_callback(lambda _: self._forget(run.run_id, task))

    def _forget(self, run_id: str, task: asyncio.Task) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]
            self._cancelling.discard(run_id)

    def _config(self, run: RunRecord) -> dict:
        return {"configurable": {"thread_id": run.run_id}, "recursion_limit": self.recursion_limit}

    async def graph_for(self, run: RunRecord, *, to_run: bool = False):
        """The run's graph; ``to_run``: with its tools loaded from the tool source (as ``workflow:<id>``)."""
        workflow = await self.store.version(run.workflow_id, run.version)
        definition = await self.registry.definition(workflow)
        tools = await self._load_tools(run, definition.tools) if to_run else None
        graph = definition.build(RunRuntime(self, run, asyncio.get_running_loop(), tools))
        instrument(graph, self.policy, self.tracer, run_id=run.run_id, workflow_id=run.workflow_id)
        return graph.compile(checkpointer=self.checkpointer)

    async def _load_tools(self, run: RunRecord, names: tuple[str, ...]) -> Mapping[str, BaseTool]:
        """The run's tools, asked for with the step policy's attempts and backoff (the tool service may be
        restarting); after the last attempt the run fails with the tool service's error."""
        for attempt in range(1, self.policy.max_attempts + 1):
            try:
                return await self.tools.load(run.tenant, run.workflow_id, names)
            except ToolServiceUnavailable:
                if attempt == self.policy.max_attempts:
                    raise
                await asyncio.sleep(min(self.policy.initial_backoff_seconds * 2 ** (attempt - 1), self.policy.max_backoff_seconds))
        raise AssertionError("unreachable")

    async def _drive(self, run: RunRecord, payload: Any, recovering: bool) -> None:
        caller = Caller(run.tenant, run.caller)
        attributes = {"soma.run.id": run.run_id, "soma.workflow.id": run.workflow_id, "soma.tenant": run.tenant}
        try:
            with self.tracer.start_as_current_span("workflow.run", attributes=attributes):
                graph = await self.graph_for(run, to_run=True)
                config = self._config(run)
                if recovering and (await graph.aget_state(config)).created_at is None:
                    payload = await self._first_input(run.run_id)     # died before the first checkpoint
                async for chunk in graph.astream(payload, config, stream_mode="updates", durability="sync"):
                    for node, update in chunk.items():
                        if node != "__interrupt__":           # interrupts are read from the state below, with ids
                            await self._event(run.run_id, "step", {"node": node, "update": update})
                snapshot = await graph.aget_state(config)
        except asyncio.CancelledError:
            if run.run_id in self._cancelling:
                return                                       # cancel() (here or on another replica) records it
            raise                                            # shutting down: stays running, recovered later
        except Exception as exc:  # noqa: BLE001 - any failure of the graph fails the run, with its reason
            message = describe(exc, self.policy)
            LOG.warning("run failed", extra={"run_id": run.run_id, "error": message})
            if await self._transition(run.run_id, "failed", "run.failed", {"error": message}, message):
                await self.auditor.record(run_event("workflow.run.finish", caller, run.workflow_id, run_id=run.run_id,
                                                    run_status="failed"))
            return
        if snapshot.interrupts:
            await self._transition(run.run_id, "interrupted", "run.interrupted",
                                   {"interrupts": [{"id": i.id, "value": i.value} for i in snapshot.interrupts]})
            return
        if await self._transition(run.run_id, "succeeded", "run.succeeded", {"output": snapshot.values}):
            await self.auditor.record(run_event("workflow.run.finish", caller, run.workflow_id, run_id=run.run_id,
                                                run_status="succeeded"))

    async def _first_input(self, run_id: str) -> Any:
        for event in await self.store.events(run_id):
            if event.kind == "run.started":
                return event.data.get("input")
        return None

    async def _transition(self, run_id: str, status: str, kind: str, data: Any, error: str | None = None) -> bool:
        moved = await self.store.transition(run_id, status, kind, data, error, unless=TERMINAL)
        self._signal(run_id)
        return moved

    async def _event(self, run_id: str, kind: str, data: Any) -> None:
        await self.store.append_event(run_id, kind, data)
        self._signal(run_id)

    def _signal(self, run_id: str) -> None:
        signal = self._signals.pop(run_id, None)
        if signal is not None:
            signal.set()

    # --- reading ------------------------------------------------------------------------------------------
    async def run_for(self, caller: Caller, workflow_id: str, run_id: str) -> RunRecord:
        """The run, if it exists, belongs to ``workflow_id`` and to the caller's tenant; 404 otherwise."""
        run = await self.store.run(run_id)
        if run is None or run.tenant != caller.tenant or run.workflow_id != workflow_id:
            raise RunError(404, "not_found", f"no run {run_id!r} of workflow {workflow_id!r}")
        return run

    async def state(self, caller: Caller, workflow_id: str, run_id: str) -> dict:
        run = await self.run_for(caller, workflow_id, run_id)
        snapshot = await (await self.graph_for(run)).aget_state(self._config(run))
        return {**describe_run(run), "values": jsonable(snapshot.values), "next": list(snapshot.next),
                "step": (snapshot.metadata or {}).get("step"),
                "interrupts": [{"id": i.id, "value": jsonable(i.value)} for i in snapshot.interrupts]}

    async def history(self, caller: Caller, workflow_id: str, run_id: str) -> list[dict]:
        """Every checkpoint of the run, oldest first: step, what ran next, the state then."""
        run = await self.run_for(caller, workflow_id, run_id)
        graph = await self.graph_for(run)
        entries = [{"checkpoint_id": s.config["configurable"]["checkpoint_id"], "step": (s.metadata or {}).get("step"),
                    "source": (s.metadata or {}).get("source"), "next": list(s.next), "created_at": s.created_at,
                    "values": jsonable(s.values)}
                   async for s in graph.aget_state_history(self._config(run))]
        return list(reversed(entries))

    async def events(self, caller: Caller, workflow_id: str, run_id: str, after: int = 0,
                     poll_seconds: float = 1.0) -> AsyncIterator[RunEvent]:
        """The run's events after ``after``, as they happen; ends once the run stops (finished or waiting).

        The status is read before the events: a status and its closing event are written in one transaction,
        so once a stopped status is seen, the events read next include everything up to the stop."""
        await self.run_for(caller, workflow_id, run_id)
        while True:
            signal = self._signals.setdefault(run_id, asyncio.Event())
            run = await self.store.run(run_id)
            batch = await self.store.events(run_id, after)
            for event in batch:
                yield event
                after = event.seq
            if run.status != "running":
                return
            if not batch:
                try:
                    await asyncio.wait_for(signal.wait(), poll_seconds)
                except asyncio.TimeoutError:
                    pass


def describe(exc: Exception, policy: StepPolicy) -> str:
    if isinstance(exc, NodeTimeoutError):
        return (f"step {exc.node!r} timed out: an attempt may take {exc.timeout:g} s and the last of its "
                f"attempts (retry policy: {policy.max_attempts} unless the step sets its own) exceeded it")
    return f"{type(exc).__name__}: {exc}"


def describe_run(run: RunRecord) -> dict:
    return {"run_id": run.run_id, "workflow_id": run.workflow_id, "version": run.version, "status": run.status,
            "error": run.error, "caller": run.caller, "created_at": run.created_at.isoformat(),
            "updated_at": run.updated_at.isoformat()}
