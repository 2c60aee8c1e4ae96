"""The typed schema of a crew file: CrewAI's agents.yaml and tasks.yaml in one document.

Field names follow CrewAI (role, goal, backstory, tools, allow_delegation, max_iter; description,
expected_output, agent, context) so a CrewAI author reads it at once; where CrewAI names a Python object
(``llm``, ``manager_llm``, ``manager_agent``, ``output_json``/``output_pydantic``) we name what the YAML holds
(``model``, ``manager_model``, ``manager``, ``output_schema``). Strict types: ``5`` is not a string and
``"yes"`` is not a boolean, so a typo fails at registration rather than behaving oddly in a run.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: The id rule of OpenFGA objects as the gateway enforces it: agent ids become ``agent:<id>`` principals.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class AgentSpec(BaseModel):
    """One member of the crew: who it is (role, goal, backstory become its system prompt) and what it may use."""

    model_config = _STRICT

    role: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    backstory: str = Field(min_length=1)
    tools: list[str] = []
    model: str | None = None
    allow_delegation: bool = False
    max_iter: int = Field(default=5, ge=1, le=50)


class TaskSpec(BaseModel):
    """One assignment. ``context`` omitted: the previous task's output (CrewAI's rule); ``context: []``: none."""

    model_config = _STRICT

    description: str = Field(min_length=1)
    expected_output: str = Field(min_length=1)
    agent: str | None = None
    context: list[str] | None = None
    output_schema: dict[str, Any] | None = None


class CrewHeader(BaseModel):
    """The crew itself; ``agents`` and ``tasks`` are validated entry by entry so every entry's problems show."""

    model_config = _STRICT

    name: str
    description: str = ""
    process: Literal["sequential", "hierarchical"] = "sequential"
    manager: str | None = None
    manager_model: str | None = None
    max_delegations: int | None = Field(default=None, ge=1, le=100)
    agents: dict[str, Any]
    tasks: dict[str, Any]


class CrewSpec(BaseModel):
    """A crew that passed every check: agents and tasks in file order (sequential crews run in that order)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    process: Literal["sequential", "hierarchical"]
    manager: str | None
    manager_model: str | None
    max_delegations: int
    agents: dict[str, AgentSpec]
    tasks: dict[str, TaskSpec]
    inputs: tuple[str, ...]

    @property
    def manager_id(self) -> str | None:
        """The agent id the manager runs as: its agent, or ``<crew>.manager`` for a bare ``manager_model``."""
        if self.process != "hierarchical":
            return None
        return self.manager or f"{self.name}.manager"

    def workers(self) -> tuple[str, ...]:
        return tuple(agent for agent in self.agents if agent != self.manager)


#: What CrewAI calls a field that has another name here: the hint an "unknown key" error gives.
CREWAI_SPELLINGS = {
    "llm": "model",
    "manager_llm": "manager_model",
    "manager_agent": "manager",
    "output_json": "output_schema",
    "output_pydantic": "output_schema",
    "max_iterations": "max_iter",
    "expected_result": "expected_output",
}
