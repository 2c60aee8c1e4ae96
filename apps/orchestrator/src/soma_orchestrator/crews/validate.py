"""From located YAML to a ``CrewSpec``, or every problem of the file with its line and field.

Two passes: the schema (types, required and unknown keys) entry by entry, then the crew's own rules
(references between agents, tasks and tools; context order and cycles; the manager). The second pass runs
even when some entries failed the first, over the entries that did parse, so one round shows everything.
"""
from __future__ import annotations

import re
from typing import Any, get_args, get_origin

import jsonschema
from pydantic import BaseModel, ValidationError

from ..definitions import DefinitionError
from .errors import CrewDefinitionError, field_path
from .schema import CREWAI_SPELLINGS, ID_PATTERN, AgentSpec, CrewHeader, CrewSpec, TaskSpec
from .yaml_lines import LocatedYaml, Path

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_KIND = {
    "string_type": "a string", "bool_type": "true or false", "int_type": "an integer",
    "dict_type": "a mapping", "tuple_type": "a list", "list_type": "a list", "model_type": "a mapping",
}
_HINTS = {
    "expected_output": "a description of what the finished task looks like (CrewAI requires it too)",
    "description": "what the task is to do",
    "role": "the agent's function in the crew", "goal": "what the agent aims at", "backstory": "who the agent is",
    "agents": "a mapping of agent id to its role, goal and backstory",
    "tasks": "a mapping of task id to its description, expected_output and agent",
    "name": "the crew's id (letters, digits, . _ ~ -)",
}


class ProblemCollector:
    """Problems of one file, each located by its path; pydantic errors turned into what an author reads."""

    def __init__(self, located: LocatedYaml, source: str):
        self.located, self.source = located, source
        self.problems: list[DefinitionError] = list(located.problems)

    def add(self, path: Path, problem: str) -> None:
        self.problems.append(DefinitionError(self.source, self.located.line_of(path), field_path(path), problem))

    def parse(self, model: type[BaseModel], data: Any, path: Path) -> Any:
        if not isinstance(data, dict):
            self.add(path, f"expected a mapping, got {_yaml_type(data)}")
            return None
        try:
            return model.model_validate(data)
        except ValidationError as error:
            for item in error.errors():
                self._schema_problem(_model_at(model, tuple(item["loc"])[:-1]), path + tuple(item["loc"]), item)
            return None

    def _schema_problem(self, model: type[BaseModel], path: Path, item: dict[str, Any]) -> None:
        kind, key = item["type"], path[-1] if path else ""
        if kind == "missing":
            hint = _HINTS.get(str(key))
            self.add(path, f"missing required key '{key}'" + (f": {hint}" if hint else ""))
        elif kind == "extra_forbidden":
            allowed = ", ".join(model.model_fields)
            crewai = CREWAI_SPELLINGS.get(str(key))
            hint = f" (CrewAI's '{key}' is '{crewai}' here)" if crewai else ""
            self.add(path, f"unknown key '{key}'{hint}; allowed keys: {allowed}")
        elif kind in _KIND:
            self.add(path, f"expected {_KIND[kind]}, got {_yaml_type(item.get('input'))}")
        elif kind == "literal_error":
            self.add(path, f"expected one of {item['ctx']['expected']}, got {item.get('input')!r}")
        elif kind == "string_too_short":
            self.add(path, "must not be empty" + (f": {_HINTS[str(key)]}" if str(key) in _HINTS else ""))
        else:
            self.add(path, item["msg"].lower())


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel]:
    """The nested model an error's location points into (``participants.x.llm`` -> the participant model),
    so an unknown key lists the keys allowed where it was written."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        else:
            args = [arg for arg in get_args(current) if arg is not type(None)]
            current = args[-1] if args else current
        while get_args(current) and not (isinstance(current, type) and issubclass(current, BaseModel)):
            args = [arg for arg in get_args(current) if arg is not type(None)]
            if len(args) != 1 or get_origin(current) in (dict, list, tuple):
                break
            current = args[0]
    return current if isinstance(current, type) and issubclass(current, BaseModel) else model


def _yaml_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    return names.get(type(value), type(value).__name__)


def validate(located: LocatedYaml, source: str, available_tools: set[str] | None) -> CrewSpec:
    """The crew, or ``CrewDefinitionError`` with every problem found."""
    check = ProblemCollector(located, source)
    header = check.parse(CrewHeader, located.data if located.data is not None else {}, ())
    raw = located.data if isinstance(located.data, dict) else {}
    raw_agents = raw.get("agents") if isinstance(raw.get("agents"), dict) else {}
    raw_tasks = raw.get("tasks") if isinstance(raw.get("tasks"), dict) else {}

    agents: dict[str, AgentSpec] = {}
    for agent_id, body in raw_agents.items():
        _check_id(check, ("agents", agent_id), agent_id, "agent")
        agents[agent_id] = check.parse(AgentSpec, body, ("agents", agent_id)) or AgentSpec.model_construct(
            tools=_strings(body, "tools") or [])
    tasks: dict[str, TaskSpec] = {}
    for task_id, body in raw_tasks.items():
        _check_id(check, ("tasks", task_id), task_id, "task")
        tasks[task_id] = check.parse(TaskSpec, body, ("tasks", task_id)) or TaskSpec.model_construct(
            agent=body.get("agent") if isinstance(body, dict) and isinstance(body.get("agent"), str) else None,
            context=_strings(body, "context"), output_schema=None)

    process = header.process if header else raw.get("process", "sequential")
    if header is not None:
        _check_id(check, ("name",), header.name, "crew")
    if isinstance(raw.get("agents"), dict) and not raw_agents:
        check.add(("agents",), "a crew needs at least one agent")
    if isinstance(raw.get("tasks"), dict) and not raw_tasks:
        check.add(("tasks",), "a crew needs at least one task")

    _check_tools(check, agents, available_tools)
    _check_manager(check, raw, process, raw_agents, agents, tasks)
    _check_tasks(check, process, raw, raw_agents, list(raw_tasks), tasks)
    if check.problems or header is None:
        raise CrewDefinitionError(check.problems or [DefinitionError(source, 1, "(crew)", "not a crew")])
    inputs = _placeholders(agents, tasks)
    return CrewSpec(
        name=header.name, description=header.description, process=header.process, manager=header.manager,
        manager_model=header.manager_model, max_delegations=header.max_delegations or 2 * len(tasks),
        agents=agents, tasks=tasks, inputs=inputs,
    )


def _strings(body: Any, key: str) -> list[str] | None:
    """A list of strings from an entry that failed the schema, so its references are still checked."""
    value = body.get(key) if isinstance(body, dict) else None
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else None


def _check_id(check: ProblemCollector, path: Path, value: Any, what: str) -> None:
    if isinstance(value, str) and not ID_PATTERN.fullmatch(value):
        check.add(path, f"{what} id '{value}' must match {ID_PATTERN.pattern} (it becomes an OpenFGA object id)")


def _check_tools(check: ProblemCollector, agents: dict[str, AgentSpec], available: set[str] | None) -> None:
    if available is None:
        return
    listing = ", ".join(sorted(available)) or "none"
    for agent_id, agent in agents.items():
        for index, tool in enumerate(agent.tools):
            if tool not in available:
                check.add(("agents", agent_id, "tools", index),
                          f"tool '{tool}' does not exist; available tools: {listing}")


def _check_manager(check: ProblemCollector, raw: dict, process: Any, raw_agents: dict, agents: dict[str, AgentSpec],
                   tasks: dict[str, TaskSpec]) -> None:
    manager, manager_model = raw.get("manager"), raw.get("manager_model")
    if process != "hierarchical":
        for key in ("manager", "manager_model", "max_delegations"):
            if key in raw:
                check.add((key,), f"'{key}' only applies to process: hierarchical (this crew is {process})")
        return
    if (manager is None) == (manager_model is None):
        check.add(("process",), "a hierarchical crew needs exactly one of 'manager' (an agent id) "
                                "or 'manager_model' (a model name)")
    if not isinstance(manager, str):
        return
    if manager not in raw_agents:
        check.add(("manager",), f"unknown agent '{manager}'; agents in this crew: {', '.join(raw_agents) or 'none'}")
        return
    spec = agents.get(manager)
    if spec is not None and spec.tools:
        check.add(("agents", manager, "tools"), "the manager delegates and must not have tools (CrewAI's rule too)")
    for task_id, task in tasks.items():
        if task.agent == manager:
            check.add(("tasks", task_id, "agent"), f"'{manager}' is the manager; give this task to a worker agent")
    if len(raw_agents) < 2:
        check.add(("agents",), "a hierarchical crew with a manager agent needs at least one other agent")


def _check_tasks(check: ProblemCollector, process: Any, raw: dict, raw_agents: dict, order: list[str],
                 tasks: dict[str, TaskSpec]) -> None:
    agent_list = ", ".join(raw_agents) or "none"
    position = {task_id: index for index, task_id in enumerate(order)}
    for task_id, task in tasks.items():
        if task.agent is None:
            if process == "sequential":
                check.add(("tasks", task_id), "missing required key 'agent': in a sequential crew every task "
                                              f"names its agent (one of: {agent_list})")
        elif task.agent not in raw_agents:
            check.add(("tasks", task_id, "agent"), f"unknown agent '{task.agent}'; agents in this crew: {agent_list}")
        if task.output_schema is not None:
            try:
                jsonschema.validators.validator_for(task.output_schema).check_schema(task.output_schema)
            except jsonschema.SchemaError as error:
                check.add(("tasks", task_id, "output_schema"), f"not a valid JSON schema: {error.message}")
    cycles = _context_cycles(tasks)
    in_cycle = {task_id for cycle in cycles for task_id in cycle}
    for task_id, task in tasks.items():
        for index, other in enumerate(task.context or ()):
            path = ("tasks", task_id, "context", index)
            if other == task_id:
                check.add(path, "a task cannot be its own context")
            elif other not in position:
                check.add(path, f"unknown task '{other}'; tasks in this crew: {', '.join(order)}")
            elif process == "sequential" and position[other] > position[task_id] and task_id not in in_cycle:
                earlier = ", ".join(order[: position[task_id]]) or "none"
                check.add(path, f"task '{other}' runs after '{task_id}' in a sequential crew; context may only "
                                f"name earlier tasks ({earlier})")
    for cycle in cycles:
        start = cycle[0]
        index = list(tasks[start].context or ()).index(cycle[1 % len(cycle)])
        check.add(("tasks", start, "context", index),
                  "context cycle: " + " -> ".join(cycle + [start]) + "; no task of a cycle could ever start")


def _context_cycles(tasks: dict[str, TaskSpec]) -> list[list[str]]:
    """Each cycle once, as the task ids along it, starting at its first task in file order."""
    cycles: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    order = list(tasks)

    def walk(start: str, node: str, trail: list[str]) -> None:
        for other in tasks[node].context or ():
            if other == start and len(trail) > 1:
                key = frozenset(trail)
                if key not in seen:
                    seen.add(key)
                    cycles.append(list(trail))
            elif other in tasks and other not in trail and order.index(other) > order.index(start):
                walk(start, other, trail + [other])

    for task_id in order:
        walk(task_id, task_id, [task_id])
    return cycles


def _placeholders(agents: dict[str, AgentSpec], tasks: dict[str, TaskSpec]) -> tuple[str, ...]:
    """The run inputs the crew's text names as ``{name}``, as CrewAI's ``kickoff(inputs=...)`` fills them."""
    texts = [text for a in agents.values() for text in (a.role, a.goal, a.backstory)]
    texts += [text for t in tasks.values() for text in (t.description, t.expected_output)]
    found: dict[str, None] = {}
    for text in texts:
        for name in PLACEHOLDER.findall(text):
            found[name] = None
    return tuple(found)
