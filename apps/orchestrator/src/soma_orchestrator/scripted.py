"""A deterministic chat model for tests: it answers from a script and records every prompt it was given.

The orchestrator's tests (and the crews' tests) never reach a real model: what a workflow does must follow
from its inputs and the model's answers alone, so tests write the answers down. A script is keyed by agent
and turn: ``ScriptedModels({"researcher": ["first answer", "second answer"], "writer": [...]})`` gives each
agent its own ``ScriptedModel``, whose n-th call returns the n-th reply. A reply is a string (the answer's
text), an ``AIMessage`` (to script tool calls: ``AIMessage("", tool_calls=[{"name", "args", "id"}])``), or a
function of the prompt returning either (to answer with what the agent was shown).

``seen`` records the prompts: ``ScriptedModel.seen[n]`` is the list of messages of the n-th call, and
``ScriptedModels.seen[agent]`` the same per agent, so a test can assert which context each step received.
Running out of replies raises ``ScriptExhausted`` naming the agent and the turn: a test that makes one call
more than it scripted fails loudly instead of hanging or inventing an answer.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Sequence, Union

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

Reply = Union[str, AIMessage, Callable[[list[BaseMessage]], Union[str, AIMessage]]]


class ScriptExhausted(RuntimeError):
    """The model was called more often than its script has replies (RuntimeError: never retried)."""


class ScriptedModel(BaseChatModel):
    """``ScriptedModel(replies=[...], agent="writer")``: the n-th call answers ``replies[n]``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any] = Field(default_factory=list)
    agent: str = "model"
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound_tools: list[str] = Field(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, replies: Sequence[Reply] = (), **kwargs: Any):
        super().__init__(replies=list(replies), **kwargs)

    @property
    def _llm_type(self) -> str:
        return "soma-scripted"

    @property
    def turn(self) -> int:
        """How many calls were answered so far."""
        return len(self.seen)

    def prompts(self) -> list[str]:
        """The last human message of each call: what the model was asked, turn by turn."""
        return [next((m.content for m in reversed(call) if m.type == "human"), "") for call in self.seen]

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):
        """Tools change nothing about the answers (the script decides); their names are recorded."""
        self.bound_tools = [getattr(tool, "name", None) or getattr(tool, "__name__", str(tool)) for tool in tools]
        return self

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        with self._lock:
            turn = len(self.seen)
            self.seen.append(list(messages))
            if turn >= len(self.replies):
                raise ScriptExhausted(f"scripted model for agent {self.agent!r} has {len(self.replies)} replies; "
                                      f"call {turn + 1} has none")
            reply = self.replies[turn]
        if callable(reply) and not isinstance(reply, BaseMessage):
            reply = reply(list(messages))
        message = reply if isinstance(reply, AIMessage) else AIMessage(content=str(reply))
        message = message.model_copy(update={"id": message.id or f"scripted-{self.agent}-{turn}"})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._answer(messages)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._answer(messages)   # no executor hop: answers stay in call order


class ScriptedModels:
    """A model provider from a script ``{agent: [reply, ...]}``: one ``ScriptedModel`` per agent, kept for
    the provider's life so turns count across the steps of a run. An agent without a script is an error."""

    def __init__(self, script: Mapping[str, Sequence[Reply]]):
        self.models = {agent: ScriptedModel(replies, agent=agent) for agent, replies in script.items()}

    def model_for(self, agent: str, model: str | None = None) -> ScriptedModel:
        try:
            return self.models[agent]
        except KeyError:
            raise ScriptExhausted(f"no script for agent {agent!r} (scripted: {sorted(self.models)})") from None

    @property
    def seen(self) -> dict[str, list[list[BaseMessage]]]:
        return {agent: model.seen for agent, model in self.models.items()}
