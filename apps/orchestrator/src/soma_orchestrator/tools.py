"""Tools as a run sees them: each call asks OpenFGA first (``can_call`` on ``tool:<name>`` for
``workflow:<id>``) and is audited, allowed or not.

A refusal is an answer the graph can read, not a crash: the wrapped tool raises ``ToolException`` with a
"not permitted" message and ``handle_tool_error`` turns it into the tool's result (a ``ToolMessage`` with
``status="error"`` when called with a tool call), so the agent learns it may not use the tool. OpenFGA giving
no answer is different: ``AuthorizationUnavailable`` propagates, the step fails (and is retried by the run's
retry policy), and nothing is called — fail closed.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from pydantic import ConfigDict

from .audit import Auditor, tool_event
from .authz import AuthorizationUnavailable, Authorizer, Caller


@dataclass
class ToolGuard:
    """What a tool call is checked and recorded against: the run, its workflow and who started it."""

    authorizer: Authorizer
    auditor: Auditor
    caller: Caller
    workflow_id: str
    run_id: str
    agent: str
    loop: asyncio.AbstractEventLoop

    async def authorize(self, tool: str) -> None:
        try:
            allowed = await self.authorizer.can_call(self.workflow_id, tool)
        except AuthorizationUnavailable as exc:
            await self.auditor.deny(tool_event(self.caller, self.workflow_id, tool, allowed=False, run_id=self.run_id,
                                               agent=self.agent, reason=f"authorization_unavailable: {exc}"))
            raise
        if not allowed:
            await self.auditor.deny(tool_event(self.caller, self.workflow_id, tool, allowed=False, run_id=self.run_id,
                                               agent=self.agent,
                                               reason=f"not_permitted: workflow:{self.workflow_id} may not call tool:{tool}"))
            raise ToolException(f"not permitted: workflow {self.workflow_id!r} may not call tool {tool!r}")
        await self.auditor.allow(tool_event(self.caller, self.workflow_id, tool, allowed=True, run_id=self.run_id,
                                            agent=self.agent, reason=None))


class AuthorizedTool(BaseTool):
    """``inner`` behind ``guard``: same name, description and argument schema, so models bind it unchanged."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    guard: Any

    @classmethod
    def wrap(cls, inner: BaseTool, guard: ToolGuard) -> "AuthorizedTool":
        return cls(name=inner.name, description=inner.description, args_schema=inner.args_schema,
                   return_direct=inner.return_direct, inner=inner, guard=guard, handle_tool_error=True)

    async def _arun(self, *args: Any, **kwargs: Any) -> Any:
        await self.guard.authorize(self.name)
        tool_input: Any = kwargs if kwargs or not args else args[0]
        return await self.inner.arun(tool_input)

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        """A synchronous call (a sync node runs in a worker thread): the check runs on the run's loop."""
        loop = self.guard.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError(f"tool {self.name!r} called synchronously on the event loop: use ainvoke")
        return asyncio.run_coroutine_threadsafe(self._arun(*args, **kwargs), loop).result()
