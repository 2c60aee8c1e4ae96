"""What the runtime adds to every step of every definition's graph, whoever authored it: a span, a
timeout and a retry policy.

The definition builds its ``StateGraph``; before compiling, the runtime
- sets the graph's node defaults (``set_node_defaults``): a ``TimeoutPolicy`` (wall clock per attempt; an
  attempt over it is cancelled and raises ``NodeTimeoutError``) and a ``RetryPolicy`` (which retries timeouts
  and transient errors, not programming errors); a node's own ``add_node(..., timeout=, retry_policy=)``
  wins, so a definition can ask for more time where it knows better;
- wraps each node's runnable so each attempt runs inside an OpenTelemetry span ``workflow.step <node>`` with
  the run id, workflow and node, ending in error (with the exception) when the attempt fails, times out or is
  cancelled, and marked ``soma.step.interrupted`` when it stops for a human (an interrupt is not a failure).

A node that is itself a compiled graph (a subgraph) is left unwrapped: LangGraph recognises subgraphs by their
runnable to checkpoint them under their own namespace, and a wrapper would hide it.
"""
from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph._internal._runnable import RunnableCallable
from langgraph.errors import GraphBubbleUp
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel
from langgraph.types import RetryPolicy, TimeoutPolicy
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

SPAN_NAME = "workflow.step"


@dataclass(frozen=True)
class StepPolicy:
    """Per-step limits, from the settings: ``timeout_seconds`` per attempt, ``max_attempts`` including the first."""

    timeout_seconds: float = 120.0
    max_attempts: int = 3
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(initial_interval=self.initial_backoff_seconds, max_interval=self.max_backoff_seconds,
                           max_attempts=self.max_attempts, jitter=False)


def instrument(graph: StateGraph, policy: StepPolicy, tracer: trace.Tracer, *, run_id: str, workflow_id: str) -> StateGraph:
    """Apply ``policy`` as the graph's node defaults and trace every node (in place; returns ``graph``)."""
    defaults = graph._node_defaults   # noqa: SLF001 - respect defaults the definition set itself
    graph.set_node_defaults(
        timeout=None if defaults.timeout is not None else TimeoutPolicy(run_timeout=policy.timeout_seconds),
        retry_policy=None if defaults.retry_policy is not None else policy.retry_policy())
    for name, spec in list(graph.nodes.items()):
        if isinstance(spec.runnable, Pregel) or getattr(spec.runnable, "_soma_traced", False):
            continue
        graph.nodes[name] = dataclasses.replace(spec, runnable=_traced(spec.runnable, name, tracer, run_id, workflow_id))
    return graph


def _traced(inner: Any, node: str, tracer: trace.Tracer, run_id: str, workflow_id: str) -> RunnableCallable:
    attributes = {"soma.run.id": run_id, "soma.workflow.id": workflow_id, "langgraph.node": node}

    def start(config: RunnableConfig):
        step = (config.get("metadata") or {}).get("langgraph_step")
        extra = {"langgraph.step": int(step)} if step is not None else {}
        return tracer.start_as_current_span(f"{SPAN_NAME} {node}", attributes={**attributes, **extra},
                                            record_exception=False, set_status_on_exception=False)

    def fail(span: trace.Span, error: BaseException) -> None:
        if isinstance(error, GraphBubbleUp):      # an interrupt (or a Command to a parent): not a failure
            span.set_attribute("soma.step.interrupted", True)
            return
        if isinstance(error, asyncio.CancelledError):
            span.set_status(Status(StatusCode.ERROR, "cancelled (step timeout or run cancelled)"))
            return
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))

    async def arun(state: Any, config: RunnableConfig) -> Any:
        with start(config) as span:
            try:
                return await inner.ainvoke(state, config)
            except BaseException as error:
                fail(span, error)
                raise

    def run(state: Any, config: RunnableConfig) -> Any:
        with start(config) as span:
            try:
                return inner.invoke(state, config)
            except BaseException as error:
                fail(span, error)
                raise

    wrapped = RunnableCallable(run, arun, name=node, trace=False)
    wrapped._soma_traced = True   # noqa: SLF001
    return wrapped
