"""AutoGen-style group conversations on autogen-agentchat, driven by its replay model client: who speaks, what
each saw, when they stop, the messages kept in the checkpointed state, and the located errors of bad files."""
from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest
from autogen_ext.models.replay import ReplayChatCompletionClient
from crews_fakes import ScriptedRuntime
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from soma_orchestrator.crews import CrewDefinitionError, CrewRunError, compile_example_conversations
from soma_orchestrator.crews.conversation import ConversationState, conversation_step, parse_conversation

CONVERSATIONS = compile_example_conversations()


def example_spec(name: str):
    from soma_orchestrator.crews import CONVERSATIONS_DIR
    return parse_conversation((CONVERSATIONS_DIR / name).read_text(encoding="utf-8"), name)


class ReplayClients:
    """A replay client per participant, kept so the test can read what each was sent."""

    def __init__(self, replies: dict[str, list[str]]):
        self.clients = {agent: ReplayChatCompletionClient(list(said)) for agent, said in replies.items()}
        self.asked: list[tuple[str, str | None]] = []

    def __call__(self, agent: str, model: str | None) -> ReplayChatCompletionClient:
        self.asked.append((agent, model))
        return self.clients[agent]

    def seen(self, agent: str, call: int) -> list[str]:
        return [str(message.content) for message in self.clients[agent].create_calls[call]["messages"]]


def converse(spec, clients, inputs: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(conversation_step(spec, clients)({"inputs": inputs}))


def test_round_robin_takes_turns_until_the_approval_text():
    clients = ReplayClients({"author": ["Design v1: a queue.", "Design v2: a queue with retries."],
                             "critic": ["Gap: no retries.", "APPROVE"]})
    result = converse(example_spec("design-review.yaml"), clients, {"feature": "webhooks"})

    assert result["speakers"] == ["author", "critic", "author", "critic"]
    assert result["stop_reason"] == "Text 'APPROVE' mentioned"
    assert [(m.type, m.name, m.content) for m in result["messages"]][:2] == [
        ("human", "user", "Propose a design for webhooks."), ("ai", "author", "Design v1: a queue.")]
    assert clients.asked == [("author", "small"), ("critic", None)]
    critic_saw = clients.seen("critic", 0)
    assert critic_saw[0].startswith("You are a staff engineer reviewing designs.")
    assert critic_saw[1:] == ["Propose a design for webhooks.", "Design v1: a queue."]
    assert clients.seen("author", 1)[-1] == "Gap: no retries."


def test_max_messages_stops_a_conversation_that_never_agrees():
    clients = ReplayClients({"author": [f"Design v{i}" for i in range(5)], "critic": ["No."] * 5})
    result = converse(example_spec("design-review.yaml"), clients, {"feature": "webhooks"})
    assert len(result["messages"]) == 8 and result["speakers"] == ["author", "critic"] * 3 + ["author"]
    assert result["stop_reason"] == "Maximum number of messages 8 reached, current message count: 8"


def test_the_selector_model_picks_each_speaker():
    clients = ReplayClients({
        "incident-huddle.selector": ["developer", "sre", "lead"],
        "developer": ["The 10:01 deploy changed the pool size."],
        "sre": ["Roll back the deploy; the runbook is payments-rollback."],
        "lead": ["Roll back now. RESOLVED"],
    })
    result = converse(example_spec("incident-huddle.yaml"), clients, {"incident": "checkout 502s"})

    assert result["speakers"] == ["developer", "sre", "lead"]
    assert result["stop_reason"] == "Text 'RESOLVED' mentioned"
    selector_prompt = "\n".join(clients.seen("incident-huddle.selector", 0))
    assert "developer: Developer of the affected service; knows the recent changes." in selector_prompt
    assert "Incident: checkout 502s. Agree on the next action." in selector_prompt
    assert ("incident-huddle.selector", "small") in clients.asked


def test_a_conversation_is_a_step_of_a_workflow_and_its_messages_are_checkpointed():
    clients = ReplayClients({"author": ["Design v1."], "critic": ["APPROVE"]})
    graph = StateGraph(ConversationState)
    graph.add_node("review", conversation_step(example_spec("design-review.yaml"), clients))
    graph.add_node("publish", lambda state: {"stop_reason": state["stop_reason"] + "; published"})
    graph.add_edge(START, "review")
    graph.add_edge("review", "publish")
    graph.add_edge("publish", END)
    app = graph.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "run-1"}}
    asyncio.run(app.ainvoke({"inputs": {"feature": "search"}}, config))

    saved = app.get_state(config).values
    assert [m.content for m in saved["messages"]] == ["Propose a design for search.", "Design v1.", "APPROVE"]
    assert saved["stop_reason"] == "Text 'APPROVE' mentioned; published"
    history = [snapshot.next for snapshot in app.get_state_history(config)]
    assert ("publish",) in history


def test_the_registered_definition_speaks_to_the_runtimes_chat_models():
    runtime = ScriptedRuntime(scripts={"author": ["Design v1."], "critic": ["APPROVE"]})
    graph = CONVERSATIONS["design-review.yaml"].build(runtime).compile()
    state = asyncio.run(graph.ainvoke({"inputs": {"feature": "search"}}))

    assert state["speakers"] == ["author", "critic"]
    assert runtime.model_names == {"author": "small", "critic": None}
    critic_call = runtime.models["critic"].seen[0]
    assert [m.type for m in critic_call] == ["system", "human", "human"]
    assert critic_call[2].content == "Design v1." and critic_call[2].name == "author"


def test_missing_inputs_are_named():
    with pytest.raises(CrewRunError, match="conversation design-review: the run is missing inputs feature"):
        converse(example_spec("design-review.yaml"), ReplayClients({"author": [], "critic": []}), {})


BAD = """\
name: chat
pattern: round_robin
selector_model: small
participants:
  code-writer:
    description: Writes.
    system_message: You write.
    llm: gpt-4o
termination: {}
"""


def test_a_bad_conversation_file_names_every_problem_with_its_line():
    with pytest.raises(CrewDefinitionError) as caught:
        parse_conversation(textwrap.dedent(BAD), "chat.yaml")
    assert [str(problem) for problem in caught.value.problems] == [
        "chat.yaml:3: selector_model: 'selector_model' only applies to pattern: selector",
        "chat.yaml:5: participants.code-writer: participant id 'code-writer' must start with a letter and hold only "
        "letters, digits and _ (AutoGen's rule for names)",
        "chat.yaml:8: participants.code-writer.llm: unknown key 'llm' (CrewAI's 'llm' is 'model' here); allowed "
        "keys: description, system_message, model",
        "chat.yaml:9: termination: give max_messages, text or both: a conversation needs a way to end",
    ]
