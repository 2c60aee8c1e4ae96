"""The example crews run end to end on scripted models: the order of tasks, the context each task saw, the
outputs, tool calls through the runtime, the manager's delegation, and the failures a run must not hide."""
from __future__ import annotations

import asyncio
import json
import textwrap

import pytest
from crews_fakes import ScriptedRuntime, tool_call

from soma_orchestrator.crews import CrewRunError, compile_crew, compile_example_crews

CREWS = compile_example_crews()
INCIDENT = {"incident": "checkout returns 502", "service": "shop"}


def run(definition, runtime, inputs):
    return asyncio.run(definition.build(runtime).compile().ainvoke({"inputs": inputs}))


def incident_runtime(**overrides) -> ScriptedRuntime:
    scripts = {
        "triager": [tool_call("log-search", {"query": "502 checkout"}),
                    '{"severity": "sev2", "components": ["checkout", "payments"]}'],
        "investigator": ["A bad deploy of payments at 10:02. Runbook: payments-rollback."],
        "communicator": ["Checkout is failing for some customers; we are rolling back a change."],
    }
    scripts.update(overrides)
    return ScriptedRuntime(scripts=scripts, tool_results={"log-search": lambda q: f"412 lines match {q!r}"})


def test_the_sequential_crew_runs_its_tasks_in_order_with_their_context():
    runtime = incident_runtime()
    state = run(CREWS["incident-triage.yaml"], runtime, INCIDENT)

    assert state["order"] == ["classify", "investigate", "status_update"]
    assert state["outputs"] == {
        "classify": {"severity": "sev2", "components": ["checkout", "payments"]},
        "investigate": "A bad deploy of payments at 10:02. Runbook: payments-rollback.",
        "status_update": "Checkout is failing for some customers; we are rolling back a change.",
    }
    triager, investigator, communicator = (runtime.models[a] for a in ("triager", "investigator", "communicator"))
    first = triager.seen[0]
    assert first[0].content.startswith("You are On-call incident triager for shop.")
    assert "Classify this incident on shop: checkout returns 502." in first[1].content
    assert "context you're working with" not in first[1].content
    # context omitted: the previous task's output, as CrewAI does
    (asked,) = investigator.prompts()
    assert '## Output of task classify\n{"components": ["checkout", "payments"], "severity": "sev2"}' in asked
    # explicit context: exactly those tasks
    (asked,) = communicator.prompts()
    assert "## Output of task classify" in asked and "## Output of task investigate\nA bad deploy" in asked
    assert runtime.model_names["triager"] == "small" and runtime.model_names["communicator"] is None


def test_a_tool_call_goes_through_the_runtime_and_its_result_back_to_the_agent():
    runtime = incident_runtime()
    state = run(CREWS["incident-triage.yaml"], runtime, INCIDENT)

    assert runtime.tool_calls == [("triager", "log-search", {"query": "502 checkout"})]
    triager = runtime.models["triager"]
    assert triager.bound_tools == ["log-search"] and runtime.models["communicator"].bound_tools == []
    tool_message = triager.seen[1][-1]
    assert tool_message.type == "tool" and tool_message.content == "412 lines match '502 checkout'"
    assert [(m.type, m.name) for m in state["messages"][:4]] == [
        ("human", "classify"), ("ai", "triager"), ("tool", "log-search"), ("ai", "triager")]
    assert all(m.name is None for m in triager.seen[1] if m.type != "tool")  # names stay out of model calls


def test_an_agent_allowed_to_delegate_hands_work_to_a_coworker_who_uses_its_own_tools():
    delegate = tool_call("delegate_work_to_coworker", {"coworker": "triager", "task": "Search the logs for deploys",
                                                       "context": "payments errors since 10:02"}, "d1")
    runtime = incident_runtime(investigator=[delegate, "Cause: the 10:02 payments deploy."])
    runtime.scripts["triager"].extend([tool_call("log-search", {"query": "deploy payments"}, "t2"),
                                       "payments v42 deployed at 10:01"])
    state = run(CREWS["incident-triage.yaml"], runtime, INCIDENT)

    assert state["outputs"]["investigate"] == "Cause: the 10:02 payments deploy."
    assert runtime.models["investigator"].bound_tools == ["runbook-lookup", "delegate_work_to_coworker"]
    assert runtime.tool_calls[-1] == ("triager", "log-search", {"query": "deploy payments"})
    asked = runtime.models["triager"].seen[2]
    assert asked[0].content.startswith("You are On-call incident triager for shop.")
    assert asked[1].content == ("Current Task: Search the logs for deploys\n\n"
                                "This is the context you're working with:\npayments errors since 10:02")
    answer = runtime.models["investigator"].seen[1][-1]
    assert answer.type == "tool" and answer.content == "payments v42 deployed at 10:01"


def test_structured_output_gets_one_retry_then_fails_clearly():
    runtime = incident_runtime(triager=['{"severity": "critical", "components": []}',
                                        '{"severity": "sev1", "components": []}'])
    state = run(CREWS["incident-triage.yaml"], runtime, INCIDENT)
    assert state["outputs"]["classify"] == {"severity": "sev1", "components": []}
    retry = runtime.models["triager"].seen[1][-1].content
    assert retry.startswith("Your answer does not match the output schema: at severity: 'critical' is not one of")

    runtime = incident_runtime(triager=["sev1, checkout", "still not json"])
    with pytest.raises(CrewRunError, match="crew incident-triage: task classify: agent triager's answer does not "
                                           "match the task's output_schema after one retry: not JSON"):
        run(CREWS["incident-triage.yaml"], runtime, INCIDENT)


def test_an_agent_that_keeps_calling_tools_is_stopped_and_an_unknown_tool_is_told_to_it():
    calls = [tool_call("log-search", {"query": f"q{i}"}, f"c{i}") for i in range(5)]
    runtime = incident_runtime(triager=[tool_call("wiki", {"query": "x"})] + calls)
    with pytest.raises(CrewRunError, match="task classify: agent triager was still calling tools after max_iter=5"):
        run(CREWS["incident-triage.yaml"], runtime, INCIDENT)
    told = runtime.models["triager"].seen[1][-1]
    assert told.type == "tool" and told.content == "no tool named wiki; your tools: log-search"
    assert len(runtime.tool_calls) == 4


def test_missing_run_inputs_are_named():
    expected = r"missing inputs incident \(the crew's text names \{service\}, \{incident\}\)"
    with pytest.raises(CrewRunError, match=expected):
        run(CREWS["incident-triage.yaml"], incident_runtime(), {"service": "shop"})


def research_runtime(manager: list[str]) -> ScriptedRuntime:
    return ScriptedRuntime(
        scripts={
            "editor": manager,
            "researcher": [tool_call("web-search", {"query": "LangGraph checkpointing"}),
                           "- Checkpoints are saved per step (https://example.org/ckpt)"],
            "writer": ["1. What 2. Why 3. How", "## What\nCheckpoints per step [1]"],
        },
        tool_results={"web-search": lambda q: "https://example.org/ckpt: saved per super-step"},
    )


DELEGATIONS = [
    '{"task": "research", "agent": "researcher"}',
    'I will ask the writer. {"task": "outline", "agent": "writer", "instructions": "Keep it to three headings."}',
    '{"task": "report"}',
]


def test_the_manager_delegates_each_task_and_the_crew_ends_when_all_are_done():
    runtime = research_runtime(list(DELEGATIONS))
    state = run(CREWS["research-report.yaml"], runtime, {"topic": "LangGraph checkpointing"})

    assert state["order"] == ["research", "outline", "report"]
    assert state["delegations"] == 3
    assert state["outputs"]["report"] == "## What\nCheckpoints per step [1]"
    manager = runtime.models["editor"]
    assert manager.turn == 3  # not asked again once every task is done
    first, second, _ = manager.prompts()
    assert "Tasks you may delegate now: research." in first
    assert "- research [done] (assigned to researcher)" in second
    assert "Tasks you may delegate now: research, outline." in second
    assert manager.seen[0][0].content.startswith("You are Managing editor.")
    assert runtime.tool_calls == [("researcher", "web-search", {"query": "LangGraph checkpointing"})]
    outline, report = runtime.models["writer"].prompts()
    assert "Instructions from your manager: Keep it to three headings." in outline
    assert "## Output of task research\n- Checkpoints are saved per step" in outline
    assert "## Output of task research" in report and "## Output of task outline\n1. What 2. Why 3. How" in report


@pytest.mark.parametrize("choice, refusal", [
    ('{"task": "report", "agent": "writer"}', "task 'report' cannot be delegated now; it may choose research"),
    ('{"task": "research", "agent": "writer"}', "task research is assigned to researcher in the crew, not writer"),
    ('{"task": "research", "agent": "editor"}', "agent 'editor' for task research is not a coworker; coworkers: "
                                                "researcher, writer"),
    ("Let the researcher start.", 'expected a JSON object {"task": ..., "agent": ...}'),
])
def test_an_invalid_choice_of_the_manager_is_refused(choice, refusal):
    with pytest.raises(CrewRunError, match="crew research-report: the manager's choice is refused: " + refusal.replace(
            "(", r"\(").replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        run(CREWS["research-report.yaml"], research_runtime([choice]), {"topic": "x"})


def test_delegations_are_bounded():
    crew = CREWS["research-report.yaml"]
    runtime = research_runtime(['{"task": "research"}'] * 7)
    runtime.scripts["researcher"] = [f"finding {i}" for i in range(7)]
    with pytest.raises(CrewRunError, match=r"the manager delegated 6 times and tasks are still pending "
                                           r"\(outline, report\); max_delegations=6"):
        run(crew, runtime, {"topic": "x"})


def test_a_manager_model_runs_as_the_crews_manager_and_context_can_be_empty():
    text = textwrap.dedent("""\
        name: pair
        process: hierarchical
        manager_model: planner
        agents:
          solo:
            role: Analyst
            goal: Answer
            backstory: Careful.
        tasks:
          first:
            description: First.
            expected_output: One.
          second:
            description: Second.
            expected_output: Two.
            context: []
        """)
    definition = compile_crew(text, "pair.yaml", set())
    assert definition.agents == ("solo", "pair.manager")
    runtime = ScriptedRuntime(scripts={"pair.manager": [json.dumps({"task": "first", "agent": "solo"}),
                                                         json.dumps({"task": "second", "agent": "solo"})],
                                       "solo": ["one", "two"]})
    state = run(definition, runtime, {})
    assert state["order"] == ["first", "second"] and runtime.model_names["pair.manager"] == "planner"
    assert "context you're working with" not in runtime.models["solo"].prompts()[1]


def test_every_example_crew_compiles_with_what_it_asks_the_runtime_for():
    assert {name: (d.kind, d.agents, d.tools) for name, d in CREWS.items()} == {
        "incident-triage.yaml": ("crew", ("triager", "investigator", "communicator"), ("log-search", "runbook-lookup")),
        "research-report.yaml": ("crew", ("editor", "researcher", "writer"), ("web-search",)),
    }


def test_the_crew_written_in_the_docs_compiles():
    from pathlib import Path
    docs = (Path(__file__).resolve().parents[3] / "docs" / "agents.md").read_text(encoding="utf-8")
    section = docs.split("## Writing a crew", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    definition = compile_crew(example, "agents.md", {"log-search"})
    assert definition.metadata == {"process": "sequential", "tasks": "classify,status_update",
                                   "inputs": "service,incident"}
