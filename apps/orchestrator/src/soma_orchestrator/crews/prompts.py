"""What each model is told. The wording follows CrewAI's prompts (persona as the system message; the task,
its expected output and its context as the request) so crews written for CrewAI behave alike here."""
from __future__ import annotations

import json
from typing import Any, Mapping

from .errors import CrewRunError
from .schema import AgentSpec, CrewSpec, TaskSpec
from .validate import PLACEHOLDER


def fill(text: str, inputs: Mapping[str, str]) -> str:
    """``{topic}`` -> the run's input ``topic``; the crew's declared inputs were checked before the run."""
    return PLACEHOLDER.sub(lambda match: str(inputs[match.group(1)]), text)


def check_inputs(crew: CrewSpec, inputs: Mapping[str, Any]) -> None:
    missing = [name for name in crew.inputs if name not in inputs]
    if missing:
        raise CrewRunError(f"crew {crew.name}: the run is missing inputs {', '.join(missing)} "
                           f"(the crew's text names {', '.join('{' + n + '}' for n in crew.inputs)})")


def persona(agent: AgentSpec, inputs: Mapping[str, str]) -> str:
    return f"You are {fill(agent.role, inputs)}. {fill(agent.backstory, inputs)}\n" \
           f"Your personal goal is: {fill(agent.goal, inputs)}"


def render_output(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, sort_keys=True)


def task_request(task_id: str, task: TaskSpec, inputs: Mapping[str, str], context: Mapping[str, Any],
                 instructions: str | None = None) -> str:
    """The task as the agent receives it; ``context`` = the outputs it may build on, by task id."""
    parts = [f"Current Task: {fill(task.description, inputs)}",
             f"This is the expected criteria for your final answer: {fill(task.expected_output, inputs)}\n"
             "You MUST return the actual complete content as the final answer, not a summary."]
    if task.output_schema is not None:
        parts.append("Reply with only a JSON object that validates against this JSON schema:\n"
                     + json.dumps(task.output_schema, sort_keys=True))
    if instructions:
        parts.append(f"Instructions from your manager: {instructions}")
    if context:
        blocks = [f"## Output of task {other}\n{render_output(output)}" for other, output in context.items()]
        parts.append("This is the context you're working with:\n" + "\n\n".join(blocks))
    return "\n\n".join(parts)


def manager_request(crew: CrewSpec, inputs: Mapping[str, str], outputs: Mapping[str, Any],
                    choices: list[str]) -> str:
    """The manager sees the plan, the team, what is done, and answers with one JSON choice."""
    lines = [f"You manage the crew {crew.name}. {crew.description}".strip(), "", "Tasks:"]
    for task_id, task in crew.tasks.items():
        status = "done" if task_id in outputs else "pending"
        owner = f" (assigned to {task.agent})" if task.agent else ""
        lines.append(f"- {task_id} [{status}]{owner}: {fill(task.description, inputs)}")
    lines += ["", "Your coworkers:"]
    for agent_id in crew.workers():
        agent = crew.agents[agent_id]
        lines.append(f"- {agent_id}: {fill(agent.role, inputs)}; goal: {fill(agent.goal, inputs)}")
    if outputs:
        lines += ["", "Results so far:"] + [f"## {task_id}\n{render_output(out)}" for task_id, out in outputs.items()]
    lines += ["", f"Tasks you may delegate now: {', '.join(choices)}.",
              'Reply with only a JSON object: {"task": "<task id>", "agent": "<coworker id>", '
              '"instructions": "<optional guidance>"}. A task that names its agent goes to that agent; '
              "you may send a done task back for rework."]
    return "\n".join(lines)
