"""What a workflow definition is, between the parts that author it (crews, hand-written graphs) and the
runtime that runs it.

A definition is compiled once, when it is registered, and built into a LangGraph ``StateGraph`` for each
run against that run's ``Runtime``: the models and tools a run may use are decided per run (per tenant,
per caller), never captured at registration. Models are langchain-core chat models (the runtime gives an
OpenAI-compatible client in production and a scripted model in tests); tools are langchain-core tools
(the tool service's, reached over MCP), each call authorized by the runtime before it runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.graph import StateGraph


class DefinitionError(ValueError):
    """A definition cannot be registered: the message names the source, the line and the field, and what
    was expected. Registration is all or nothing: nothing of a definition with an error is kept."""

    def __init__(self, source: str, line: int | None, field_path: str, problem: str):
        self.source, self.line, self.field_path, self.problem = source, line, field_path, problem
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {field_path}: {problem}")


class Runtime(Protocol):
    """What a run gives a definition to build itself with."""

    def model_for(self, agent: str, model: str | None = None) -> BaseChatModel:
        """The chat model an agent of this run speaks to (``model``: the name the definition asked for)."""

    def tools_for(self, agent: str, names: tuple[str, ...]) -> Mapping[str, BaseTool]:
        """The named tools, wrapped so that every call is authorized (OpenFGA can_call) and audited."""


@dataclass(frozen=True)
class Definition:
    """A registered workflow: ``build`` turns it into a graph for one run.

    ``kind`` says how it was authored (``crew`` for YAML crews); ``tools`` and ``agents`` are what it will ask
    the runtime for, known at registration so a definition naming an unknown tool is refused then, not mid-run.
    """

    name: str
    kind: str
    source: str
    build: Callable[[Runtime], StateGraph]
    agents: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
