"""``compile_crew``: a crew file to a ``Definition`` the runtime registers and runs.

Compiling does all the checking (YAML, schema, references, tools) so registration is all or nothing; the
graph itself is built per run, against that run's models and tools.
"""
from __future__ import annotations

from pathlib import Path

from ..definitions import Definition
from .graph import build_graph
from .schema import CrewSpec
from .validate import validate
from .yaml_lines import load

#: The example crews shipped as documentation (apps/orchestrator/crews/*.yaml).
EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "crews"
#: The example conversations (apps/orchestrator/conversations/*.yaml).
CONVERSATIONS_DIR = EXAMPLES_DIR.parent / "conversations"
#: The tools the example crews use; the tool service registers them under these names.
EXAMPLE_TOOLS = frozenset({"log-search", "web-search", "runbook-lookup"})


def parse_crew(text: str, source: str, available_tools: set[str] | frozenset[str] | None) -> CrewSpec:
    """The checked crew, or ``CrewDefinitionError`` (a ``DefinitionError``) listing every problem."""
    return validate(load(text, source), source, None if available_tools is None else set(available_tools))


def compile_crew(text: str, source: str, available_tools: set[str] | frozenset[str] | None) -> Definition:
    """``source``: the file name errors point at; ``available_tools``: the tool names the tool service offers
    (``None``: not checked, for a stored crew recompiled on load)."""
    crew = parse_crew(text, source, available_tools)
    agents = tuple(crew.agents) + ((crew.manager_id,) if crew.manager_model else ())
    tools = tuple(dict.fromkeys(tool for agent in crew.agents.values() for tool in agent.tools))
    return Definition(
        name=crew.name, kind="crew", source=source, build=lambda runtime: build_graph(crew, runtime),
        agents=agents, tools=tools,
        metadata={"process": crew.process, "tasks": ",".join(crew.tasks), "inputs": ",".join(crew.inputs)},
    )


def compile_example_crews(available_tools: set[str] | frozenset[str] = EXAMPLE_TOOLS) -> dict[str, Definition]:
    """Every example crew compiled, by file name: what the benchmark times and the tests run."""
    return {path.name: compile_crew(path.read_text(encoding="utf-8"), path.name, available_tools)
            for path in sorted(EXAMPLES_DIR.glob("*.yaml"))}


def compile_example_conversations() -> dict[str, Definition]:
    """Every example conversation compiled, by file name."""
    from .conversation import compile_conversation

    return {path.name: compile_conversation(path.read_text(encoding="utf-8"), path.name)
            for path in sorted(CONVERSATIONS_DIR.glob("*.yaml"))}
