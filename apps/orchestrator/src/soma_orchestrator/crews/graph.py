"""A crew as a LangGraph ``StateGraph``: one node per task, and for hierarchical crews a manager node that
routes to them.

Sequential: ``START -> task 1 -> task 2 -> ... -> END`` in file order. Hierarchical: ``START -> manager``;
the manager's model answers with a JSON choice (task, agent, instructions), checked against what it may
delegate now, and the graph goes to that task's node and back to the manager, until every task is done
(then ``END`` without asking again) or ``max_delegations`` is reached (a failure, never a silent stop).

Each task node is a small ReAct loop: the agent's model, bound to its tools from ``runtime.tools_for``,
answers; every tool call it makes is run and its result handed back, at most ``max_iter`` model turns.
Nodes are async (the tool service's MCP tools are async-only): run the graph with ``ainvoke``/``astream``.
"""
from __future__ import annotations

import json
import operator
import re
from typing import Annotated, Any, Mapping, TypedDict

import jsonschema
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, Field

from ..definitions import Runtime
from . import prompts
from .errors import CrewRunError
from .schema import CrewSpec, TaskSpec


def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class CrewState(TypedDict, total=False):
    """A crew run's state (what the checkpointer saves): ``outputs`` by task id (text, or the parsed JSON of a
    task with an output schema), ``order`` the tasks in the order they ran (a reworked task twice),
    ``messages`` every exchange with the agents, ``assignment`` the manager's last choice."""

    inputs: dict[str, Any]
    outputs: Annotated[dict[str, Any], _merge]
    order: Annotated[list[str], operator.add]
    messages: Annotated[list[AnyMessage], add_messages]
    assignment: dict[str, Any] | None
    delegations: int


def task_node_name(task_id: str) -> str:
    return f"task.{task_id}"


MANAGER_NODE = "manager"


def build_graph(crew: CrewSpec, runtime: Runtime) -> StateGraph:
    """Models and tools are resolved here, once per run, so a missing one fails before the first step."""
    models = {agent_id: runtime.model_for(agent_id, agent.model) for agent_id, agent in crew.agents.items()
              if agent_id != crew.manager}
    tools = {agent_id: dict(runtime.tools_for(agent_id, tuple(agent.tools))) if agent.tools else {}
             for agent_id, agent in crew.agents.items() if agent_id != crew.manager}
    graph = StateGraph(CrewState)
    for task_id in crew.tasks:
        graph.add_node(task_node_name(task_id), _task_node(crew, task_id, models, tools))
    task_ids = list(crew.tasks)
    if crew.process == "sequential":
        graph.add_edge(START, task_node_name(task_ids[0]))
        for before, after in zip(task_ids, task_ids[1:]):
            graph.add_edge(task_node_name(before), task_node_name(after))
        graph.add_edge(task_node_name(task_ids[-1]), END)
        return graph

    assert crew.manager_id is not None
    manager_spec = crew.agents.get(crew.manager) if crew.manager else None
    manager_model = runtime.model_for(crew.manager_id, manager_spec.model if manager_spec else crew.manager_model)
    graph.add_node(MANAGER_NODE, _manager_node(crew, manager_model))

    def after_task(state: CrewState) -> str:
        return END if all(task_id in (state.get("outputs") or {}) for task_id in crew.tasks) else MANAGER_NODE

    def after_manager(state: CrewState) -> str:
        return task_node_name(state["assignment"]["task"])

    graph.add_edge(START, MANAGER_NODE)
    graph.add_conditional_edges(MANAGER_NODE, after_manager, [task_node_name(t) for t in task_ids])
    for task_id in task_ids:
        graph.add_conditional_edges(task_node_name(task_id), after_task, [MANAGER_NODE, END])
    return graph


DELEGATE_TOOL = "delegate_work_to_coworker"


class _Delegation(BaseModel):
    coworker: str = Field(description="the id of the coworker to hand the work to")
    task: str = Field(description="what the coworker is to do, in full: they know nothing else")
    context: str = Field(default="", description="everything the coworker needs to know to do it")


def _delegation_tool(crew: CrewSpec, agent_id: str, coworkers: list[str], models: Mapping[str, BaseChatModel],
                     tools: Mapping[str, Mapping[str, BaseTool]], inputs: Mapping[str, Any]) -> BaseTool:
    """CrewAI's ``allow_delegation``: the agent may hand a piece of work to a coworker, who answers with its
    own model and tools (but cannot delegate further, so delegation never loops)."""

    async def delegate(coworker: str, task: str, context: str = "") -> str:
        if coworker not in coworkers:
            return f"no coworker named {coworker}; your coworkers: {', '.join(coworkers)}"
        request = f"Current Task: {task}"
        if context:
            request += f"\n\nThis is the context you're working with:\n{context}"
        messages: list[AnyMessage] = [SystemMessage(prompts.persona(crew.agents[coworker], inputs)),
                                      HumanMessage(request)]
        answer = await _react(crew, f"work delegated by {agent_id}", coworker, models[coworker], tools[coworker],
                              messages)
        return _text(answer)

    return StructuredTool.from_function(
        coroutine=delegate, name=DELEGATE_TOOL, args_schema=_Delegation,
        description=f"Hand a piece of work to one of your coworkers ({', '.join(coworkers)}) and get their answer.")


def _context_for(crew: CrewSpec, task_id: str, state: CrewState) -> dict[str, Any]:
    """Explicit ``context``: those tasks' outputs. Omitted: the output of the task that ran last (CrewAI)."""
    outputs, task = state.get("outputs") or {}, crew.tasks[task_id]
    if task.context is not None:
        return {other: outputs[other] for other in task.context if other in outputs}
    order = [ran for ran in state.get("order") or [] if ran != task_id]
    return {order[-1]: outputs[order[-1]]} if order else {}


def _task_node(crew: CrewSpec, task_id: str, models: Mapping[str, BaseChatModel],
               tools: Mapping[str, Mapping[str, BaseTool]]):
    task = crew.tasks[task_id]

    async def run_task(state: CrewState) -> dict[str, Any]:
        inputs = state.get("inputs") or {}
        prompts.check_inputs(crew, inputs)
        assignment = state.get("assignment") or {}
        agent_id = task.agent or assignment.get("agent")
        if agent_id is None:
            raise CrewRunError(f"crew {crew.name}: task {task_id} has no agent")
        instructions = assignment.get("instructions") if assignment.get("task") == task_id else None
        request = prompts.task_request(task_id, task, inputs, _context_for(crew, task_id, state), instructions)
        messages: list[AnyMessage] = [SystemMessage(prompts.persona(crew.agents[agent_id], inputs)),
                                      HumanMessage(request)]
        agent_tools = dict(tools[agent_id])
        coworkers = [other for other in models if other != agent_id]
        if crew.agents[agent_id].allow_delegation and coworkers:
            agent_tools[DELEGATE_TOOL] = _delegation_tool(crew, agent_id, coworkers, models, tools, inputs)
        answer = await _react(crew, task_id, agent_id, models[agent_id], agent_tools, messages)
        output = await _structured(crew, task_id, task, agent_id, models[agent_id], messages, answer)
        said = [_named(m, agent_id if m.type == "ai" else task_id) for m in messages[1:]]
        return {"outputs": {task_id: output}, "order": [task_id], "messages": said, "assignment": None}

    return run_task


async def _react(crew: CrewSpec, task_id: str, agent_id: str, model: BaseChatModel,
                 tools: Mapping[str, BaseTool], messages: list[AnyMessage]) -> AIMessage:
    bound = model.bind_tools(list(tools.values())) if tools else model
    limit = crew.agents[agent_id].max_iter
    for _ in range(limit):
        reply = await bound.ainvoke(messages)
        messages.append(reply)
        if not getattr(reply, "tool_calls", None):
            return reply
        for call in reply.tool_calls:
            tool = tools.get(call["name"])
            if tool is None:
                content = f"no tool named {call['name']}; your tools: {', '.join(tools) or 'none'}"
                messages.append(ToolMessage(content, tool_call_id=call["id"], name=call["name"], status="error"))
                continue
            result = await tool.ainvoke(call["args"])
            content = result if isinstance(result, str) else json.dumps(result, default=str)
            messages.append(ToolMessage(content, tool_call_id=call["id"], name=call["name"]))
    raise CrewRunError(f"crew {crew.name}: task {task_id}: agent {agent_id} was still calling tools after "
                       f"max_iter={limit} turns")


async def _structured(crew: CrewSpec, task_id: str, task: TaskSpec, agent_id: str, model: BaseChatModel,
                      messages: list[AnyMessage], answer: AIMessage) -> Any:
    """Text as is; with ``output_schema``, the JSON answer validated, with one retry telling what was wrong."""
    if task.output_schema is None:
        return _text(answer)
    problem = _schema_problem(_text(answer), task.output_schema)
    if problem is None:
        return json.loads(_strip_fence(_text(answer)))
    messages.append(HumanMessage(f"Your answer does not match the output schema: {problem}. "
                                 "Reply again with only the corrected JSON object."))
    retry = await model.ainvoke(messages)
    messages.append(retry)
    second = _schema_problem(_text(retry), task.output_schema)
    if second is not None:
        raise CrewRunError(f"crew {crew.name}: task {task_id}: agent {agent_id}'s answer does not match the "
                           f"task's output_schema after one retry: {second}")
    return json.loads(_strip_fence(_text(retry)))


def _named(message: AnyMessage, name: str) -> AnyMessage:
    """A copy naming who said it, for the state only: names go to no model (ids with dots are not valid
    message names for OpenAI-compatible endpoints). Tool results keep the tool's name."""
    return message if message.type == "tool" else message.model_copy(update={"name": name})


def _text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```\s*$", re.DOTALL)


def _strip_fence(text: str) -> str:
    match = _FENCE.match(text.strip())
    return match.group(1) if match else text.strip()


def _schema_problem(text: str, schema: dict[str, Any]) -> str | None:
    try:
        value = json.loads(_strip_fence(text))
    except json.JSONDecodeError as error:
        return f"not JSON ({error.msg} at line {error.lineno} column {error.colno})"
    found = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(value))
    if found is None:
        return None
    where = "/".join(str(part) for part in found.absolute_path) or "(top)"
    return f"at {where}: {found.message}"


def _manager_node(crew: CrewSpec, model: BaseChatModel):
    async def manage(state: CrewState) -> dict[str, Any]:
        delegations = state.get("delegations", 0)
        if delegations >= crew.max_delegations:
            pending = ", ".join(t for t in crew.tasks if t not in (state.get("outputs") or {}))
            raise CrewRunError(f"crew {crew.name}: the manager delegated {delegations} times and tasks are still "
                               f"pending ({pending}); max_delegations={crew.max_delegations}")
        inputs, outputs = state.get("inputs") or {}, state.get("outputs") or {}
        prompts.check_inputs(crew, inputs)
        choices = [task_id for task_id, task in crew.tasks.items()
                   if all(other in outputs for other in task.context or ())]
        request = HumanMessage(prompts.manager_request(crew, inputs, outputs, choices))
        system = SystemMessage(prompts.persona(crew.agents[crew.manager], inputs)) if crew.manager else \
            SystemMessage(f"You are the manager of the crew {crew.name}: you delegate each task to the right coworker.")
        reply = await model.ainvoke([system, request])
        assignment = _parse_choice(crew, _text(reply), choices)
        return {"assignment": assignment, "delegations": delegations + 1,
                "messages": [_named(request, MANAGER_NODE), _named(reply, crew.manager_id)]}

    return manage


_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _parse_choice(crew: CrewSpec, text: str, choices: list[str]) -> dict[str, Any]:
    """The manager's JSON object (the first ``{...}`` of its reply), checked: a task it may delegate now, and
    an agent that is a coworker and, for a task that names its agent, that agent."""
    refuse = f"crew {crew.name}: the manager's choice is refused: "
    match = _OBJECT.search(text)
    try:
        choice = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        choice = None
    if not isinstance(choice, dict) or not isinstance(choice.get("task"), str):
        raise CrewRunError(refuse + f'expected a JSON object {{"task": ..., "agent": ...}}, got {text[:200]!r}')
    task_id, agent_id = choice["task"], choice.get("agent")
    if task_id not in choices:
        raise CrewRunError(refuse + f"task {task_id!r} cannot be delegated now; it may choose {', '.join(choices)}")
    declared = crew.tasks[task_id].agent
    workers = crew.workers()
    if agent_id is None:
        agent_id = declared
    if agent_id is None or agent_id not in workers:
        raise CrewRunError(refuse + f"agent {agent_id!r} for task {task_id} is not a coworker; "
                                    f"coworkers: {', '.join(workers)}")
    if declared is not None and agent_id != declared:
        raise CrewRunError(refuse + f"task {task_id} is assigned to {declared} in the crew, not {agent_id}")
    instructions = choice.get("instructions")
    return {"task": task_id, "agent": agent_id,
            "instructions": instructions if isinstance(instructions, str) and instructions else None}
