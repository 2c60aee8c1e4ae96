"""Bad crew files: each problem names the file, the line and the field, and says what is expected; every
problem of a file comes in one error, and a file with any problem compiles to nothing."""
from __future__ import annotations

import textwrap

import pytest

from soma_orchestrator.crews import CrewDefinitionError, compile_crew
from soma_orchestrator.definitions import DefinitionError

TOOLS = {"web-search", "log-search"}


def problems(text: str, source: str = "crew.yaml") -> list[str]:
    with pytest.raises(CrewDefinitionError) as caught:
        compile_crew(textwrap.dedent(text), source, TOOLS)
    assert isinstance(caught.value, DefinitionError)
    return [str(problem) for problem in caught.value.problems]


SEQUENTIAL = """\
name: demo
agents:
  writer:
    role: Writer
    goal: Write
    backstory: Writes.
    tools: [web-search]
tasks:
  draft:
    description: Draft it.
    expected_output: A draft.
    agent: writer
  polish:
    description: Polish it.
    expected_output: A polished text.
    agent: writer
"""


def test_the_sequential_base_crew_is_valid():
    assert compile_crew(SEQUENTIAL, "crew.yaml", TOOLS).metadata["tasks"] == "draft,polish"


CASES = {
    "unknown agent": (
        SEQUENTIAL.replace("    agent: writer\n  polish", "    agent: editor\n  polish"),
        "crew.yaml:12: tasks.draft.agent: unknown agent 'editor'; agents in this crew: writer"),
    "tool that does not exist": (
        SEQUENTIAL.replace("[web-search]", "[web-search, wiki]"),
        "crew.yaml:7: agents.writer.tools[1]: tool 'wiki' does not exist; available tools: log-search, web-search"),
    "missing expected output": (
        SEQUENTIAL.replace("    expected_output: A draft.\n", ""),
        "crew.yaml:9: tasks.draft.expected_output: missing required key 'expected_output': a description of "
        "what the finished task looks like"),
    "empty expected output": (
        SEQUENTIAL.replace("expected_output: A draft.", 'expected_output: ""'),
        "crew.yaml:11: tasks.draft.expected_output: must not be empty"),
    "context naming a later task": (
        SEQUENTIAL.replace("    agent: writer\n  polish", "    agent: writer\n    context: [polish]\n  polish"),
        "crew.yaml:13: tasks.draft.context[0]: task 'polish' runs after 'draft' in a sequential crew; context "
        "may only name earlier tasks (none)"),
    "context naming an unknown task": (
        SEQUENTIAL + "    context: [outline]\n",
        "crew.yaml:17: tasks.polish.context[0]: unknown task 'outline'; tasks in this crew: draft, polish"),
    "duplicate task id": (
        SEQUENTIAL + "  draft:\n    description: Again.\n    expected_output: X.\n    agent: writer\n",
        "crew.yaml:17: tasks.draft: duplicate key 'draft' (first defined at line 9)"),
    "unknown key with CrewAI's spelling": (
        SEQUENTIAL.replace("    tools: [web-search]\n", "    llm: gpt-4o\n"),
        "crew.yaml:7: agents.writer.llm: unknown key 'llm' (CrewAI's 'llm' is 'model' here); allowed keys: role, "
        "goal, backstory, tools, model, allow_delegation, max_iter"),
    "wrong type: tools as a string": (
        SEQUENTIAL.replace("[web-search]", "web-search"),
        "crew.yaml:7: agents.writer.tools: expected a list, got a string"),
    "wrong type: yes/no as a string": (
        SEQUENTIAL.replace("    tools: [web-search]\n", "    allow_delegation: 'yes'\n"),
        "crew.yaml:7: agents.writer.allow_delegation: expected true or false, got a string"),
    "unknown process": (
        "process: parallel\n" + SEQUENTIAL,
        "crew.yaml:1: process: expected one of 'sequential' or 'hierarchical', got 'parallel'"),
    "agents written as a list": (
        SEQUENTIAL.replace("agents:\n  writer:\n    role", "agents:\n  - id: writer\n    role"),
        "crew.yaml:2: agents: expected a mapping, got a list"),
    "id that cannot be an OpenFGA object": (
        SEQUENTIAL.replace("  polish:", "  polish/final:"),
        "crew.yaml:13: tasks.polish/final: task id 'polish/final' must match"),
    "invalid output schema": (
        SEQUENTIAL + "    output_schema: {type: banana}\n",
        "crew.yaml:17: tasks.polish.output_schema: not a valid JSON schema:"),
    "manager on a sequential crew": (
        SEQUENTIAL + "manager: writer\n",
        "crew.yaml:17: manager: 'manager' only applies to process: hierarchical (this crew is sequential)"),
    "YAML syntax error": (
        SEQUENTIAL.replace("tools: [web-search]", "tools: [web-search"),
        "crew.yaml:8: (yaml): not valid YAML:"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_crew_names_file_line_and_field(case):
    text, expected = CASES[case]
    if case == "YAML syntax error":
        with pytest.raises(DefinitionError, match=r"crew\.yaml:\d+: \(yaml\): not valid YAML"):
            compile_crew(text, "crew.yaml", TOOLS)
        return
    found = problems(text)
    assert any(problem.startswith(expected) for problem in found), found


HIERARCHICAL = """\
name: desk
process: hierarchical
manager: editor
agents:
  editor:
    role: Editor
    goal: Deliver
    backstory: Runs the desk.
  writer:
    role: Writer
    goal: Write
    backstory: Writes.
tasks:
  a:
    description: A.
    expected_output: A.
    agent: writer
    context: [c]
  b:
    description: B.
    expected_output: B.
    agent: writer
    context: [a]
  c:
    description: C.
    expected_output: C.
    context: [b]
"""


def test_a_context_cycle_is_named_along_its_tasks():
    assert problems(HIERARCHICAL) == [
        "crew.yaml:18: tasks.a.context[0]: context cycle: a -> c -> b -> a; no task of a cycle could ever start"]


def test_the_manager_is_checked():
    text = HIERARCHICAL.replace("    context: [c]\n", "").replace(
        "    backstory: Runs the desk.\n", "    backstory: Runs the desk.\n    tools: [web-search]\n")
    text = text.replace("    context: [a]\n", "    context: [a]\n  d:\n    description: D.\n"
                                             "    expected_output: D.\n    agent: editor\n")
    assert problems(text) == [
        "crew.yaml:9: agents.editor.tools: the manager delegates and must not have tools (CrewAI's rule too)",
        "crew.yaml:27: tasks.d.agent: 'editor' is the manager; give this task to a worker agent",
    ]
    without = HIERARCHICAL.replace("    context: [c]\n", "").replace("manager: editor\n", "")
    assert problems(without) == ["crew.yaml:2: process: a hierarchical crew needs exactly one of 'manager' "
                                 "(an agent id) or 'manager_model' (a model name)"]
    unknown = HIERARCHICAL.replace("    context: [c]\n", "").replace("manager: editor", "manager: boss")
    assert problems(unknown) == ["crew.yaml:3: manager: unknown agent 'boss'; agents in this crew: editor, writer"]


def test_every_problem_comes_at_once_in_file_order_and_nothing_compiles():
    text = SEQUENTIAL.replace("[web-search]", "[wiki]").replace("    expected_output: A draft.\n", "") \
        .replace("agent: writer\n  polish", "agent: editor\n  polish") + "    colour: blue\n"
    with pytest.raises(CrewDefinitionError) as caught:
        compile_crew(text, "crews/demo.yaml", TOOLS)
    error = caught.value
    assert [(p.line, p.field_path) for p in error.problems] == [
        (7, "agents.writer.tools[0]"), (9, "tasks.draft.expected_output"), (11, "tasks.draft.agent"),
        (16, "tasks.polish.colour")]
    message = str(error)
    assert message.startswith("4 problems in crews/demo.yaml:\n  crews/demo.yaml:7: agents.writer.tools[0]: ")
    assert (error.source, error.line, error.field_path) == ("crews/demo.yaml", 7, "agents.writer.tools[0]")
