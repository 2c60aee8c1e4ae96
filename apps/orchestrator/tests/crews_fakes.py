"""The crews' tests' Runtime: the orchestrator's scripted model (``soma_orchestrator.scripted``) per agent, and
tools whose calls are recorded with the calling agent."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import BaseTool, StructuredTool
from soma_orchestrator.scripted import ScriptedModel

Reply = str | AIMessage


def tool_call(name: str, args: dict[str, Any], call_id: str = "call-1") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


@dataclass
class ScriptedRuntime:
    """A Runtime: each agent's scripted model, and tools whose calls are recorded with the calling agent."""

    scripts: Mapping[str, list[Reply]]
    tool_results: Mapping[str, Callable[..., str]] = field(default_factory=dict)
    models: dict[str, ScriptedModel] = field(default_factory=dict)
    model_names: dict[str, str | None] = field(default_factory=dict)
    tool_calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def model_for(self, agent: str, model: str | None = None) -> BaseChatModel:
        self.model_names[agent] = model
        self.models[agent] = ScriptedModel(list(self.scripts.get(agent, [])), agent=agent)
        return self.models[agent]

    def tools_for(self, agent: str, names: tuple[str, ...]) -> Mapping[str, BaseTool]:
        def make(name: str) -> BaseTool:
            def call(query: str) -> str:
                self.tool_calls.append((agent, name, {"query": query}))
                return self.tool_results[name](query)
            return StructuredTool.from_function(call, name=name, description=f"the {name} tool")
        return {name: make(name) for name in names}
