"""Test stand-ins for the crews' tests: a scripted chat model and a Runtime handing it out per agent.

Minimal on purpose: the orchestrator's shared scripted model (``soma_orchestrator.scripted``) replaces these
at merge; what the tests rely on is only that a model answers from a script and records what it was sent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import PrivateAttr

Reply = str | AIMessage


class ScriptedChatModel(BaseChatModel):
    """Answers with the next reply of its script; ``calls`` keeps every message list it received and
    ``bound_tools`` the tool names it was bound to. An exhausted script is an error, never a made-up reply."""

    script: list[Any]
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _bound: list[str] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-test"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        return self._calls

    @property
    def bound_tools(self) -> list[str]:
        return self._bound

    def prompts(self) -> list[str]:
        """The last human message of each call: what the model was asked."""
        return [next(m.content for m in reversed(call) if m.type == "human") for call in self._calls]

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "ScriptedChatModel":
        self._bound.extend(tool.name for tool in tools)
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        self._calls.append(list(messages))
        if not self.script:
            raise AssertionError(f"scripted model: no reply left for call {len(self._calls)}")
        reply = self.script.pop(0)
        message = AIMessage(content=reply) if isinstance(reply, str) else reply.model_copy()
        return ChatResult(generations=[ChatGeneration(message=message)])


def tool_call(name: str, args: dict[str, Any], call_id: str = "call-1") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


@dataclass
class ScriptedRuntime:
    """A Runtime: each agent's scripted model, and tools whose calls are recorded with the calling agent."""

    scripts: Mapping[str, list[Reply]]
    tool_results: Mapping[str, Callable[..., str]] = field(default_factory=dict)
    models: dict[str, ScriptedChatModel] = field(default_factory=dict)
    model_names: dict[str, str | None] = field(default_factory=dict)
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def model_for(self, agent: str, model: str | None = None) -> BaseChatModel:
        self.model_names[agent] = model
        self.models[agent] = ScriptedChatModel(script=list(self.scripts.get(agent, [])))
        return self.models[agent]

    def tools_for(self, agent: str, names: tuple[str, ...]) -> Mapping[str, BaseTool]:
        def make(name: str) -> BaseTool:
            def call(query: str) -> str:
                self.tool_calls.append((agent, name, {"query": query}))
                return self.tool_results[name](query)
            return StructuredTool.from_function(call, name=name, description=f"the {name} tool")
        return {name: make(name) for name in names}
