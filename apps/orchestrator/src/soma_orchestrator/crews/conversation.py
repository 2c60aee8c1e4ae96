"""AutoGen-style group conversations as a workflow step: a YAML file names the participants, the pattern
(``round_robin`` or ``selector``) and when to stop; the step runs it on ``autogen-agentchat``'s teams.

Why AutoGen's own teams rather than a re-implementation: the speaking order, the selector's prompt and the
termination conditions are theirs, and an author who knows AutoGen gets exactly its behaviour. What we add is
the authoring check (same located errors as crews) and the step's contract: the conversation's messages land
in the LangGraph state, so the checkpointer saves them and the runtime audits the step like any other.

The step runs the whole conversation as one graph step: a run interrupted mid-conversation starts that
conversation again on resume (its earlier steps are kept).
"""
from __future__ import annotations

import operator
from typing import Annotated, Any, AsyncGenerator, Callable, Literal, Mapping, Sequence, TypedDict

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.messages import BaseChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import (AssistantMessage, ChatCompletionClient, CreateResult, LLMMessage, ModelFamily,
                                 ModelInfo, RequestUsage, SystemMessage, UserMessage)
from langchain_core import messages as lc
from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from pydantic import BaseModel, ConfigDict, Field

from ..definitions import Definition, Runtime
from . import prompts
from .errors import CrewDefinitionError, CrewRunError
from .validate import PLACEHOLDER, ProblemCollector
from .yaml_lines import load

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
ClientFactory = Callable[[str, "str | None"], ChatCompletionClient]


class ParticipantSpec(BaseModel):
    model_config = _STRICT

    description: str = Field(min_length=1)
    system_message: str = Field(min_length=1)
    model: str | None = None


class TerminationSpec(BaseModel):
    """Stop at ``max_messages`` (the task counts as one) or when a message mentions ``text``, whichever first."""

    model_config = _STRICT

    max_messages: int | None = Field(default=None, ge=2, le=200)
    text: str | None = Field(default=None, min_length=1)


class ConversationSpec(BaseModel):
    model_config = _STRICT

    name: str
    description: str = ""
    pattern: Literal["round_robin", "selector"]
    task: str = "{task}"
    participants: dict[str, ParticipantSpec]
    termination: TerminationSpec
    selector_model: str | None = None
    selector_prompt: str | None = None
    allow_repeated_speaker: bool = False

    @property
    def selector_id(self) -> str:
        return f"{self.name}.selector"

    def inputs(self) -> tuple[str, ...]:
        texts = [self.task] + [p.system_message for p in self.participants.values()]
        return tuple(dict.fromkeys(name for text in texts for name in PLACEHOLDER.findall(text)))


def parse_conversation(text: str, source: str) -> ConversationSpec:
    """The checked conversation, or ``CrewDefinitionError`` with every problem located."""
    located = load(text, source)
    check = ProblemCollector(located, source)
    spec = check.parse(ConversationSpec, located.data if located.data is not None else {}, ())
    raw = located.data if isinstance(located.data, dict) else {}
    participants = raw.get("participants") if isinstance(raw.get("participants"), dict) else {}
    for participant in participants:
        if not (participant.isidentifier() and participant[0].isalpha() and len(participant) <= 64):
            check.add(("participants", participant), f"participant id '{participant}' must start with a letter and "
                                                     "hold only letters, digits and _ (AutoGen's rule for names)")
    termination = raw.get("termination")
    if isinstance(termination, dict) and not ({"max_messages", "text"} & set(termination)):
        check.add(("termination",), "give max_messages, text or both: a conversation needs a way to end")
    if raw.get("pattern") == "selector" and len(participants) < 2:
        check.add(("participants",), "a selector conversation needs at least two participants")
    if raw.get("pattern") == "round_robin":
        for key in ("selector_model", "selector_prompt", "allow_repeated_speaker"):
            if key in raw:
                check.add((key,), f"'{key}' only applies to pattern: selector")
    if isinstance(participants, dict) and not participants and "participants" in raw:
        check.add(("participants",), "a conversation needs at least one participant")
    if check.problems or spec is None:
        raise CrewDefinitionError(check.problems)
    return spec


def conversation_step(spec: ConversationSpec, client_for: ClientFactory):
    """An async LangGraph node running the conversation; add it to any graph whose state has ``inputs`` and
    the keys of ``ConversationState``. ``client_for(agent_id, model_name)`` gives each participant's client
    (and the selector's, as ``<name>.selector``)."""

    async def converse(state: Mapping[str, Any]) -> dict[str, Any]:
        inputs = state.get("inputs") or {}
        missing = [name for name in spec.inputs() if name not in inputs]
        if missing:
            raise CrewRunError(f"conversation {spec.name}: the run is missing inputs {', '.join(missing)}")
        team = _team(spec, client_for, inputs)
        result = await team.run(task=prompts.fill(spec.task, inputs))
        said = [message for message in result.messages if isinstance(message, BaseChatMessage)]
        return {
            "messages": [_to_langchain(message) for message in said],
            "speakers": [message.source for message in said if message.source != "user"],
            "stop_reason": result.stop_reason or "",
        }

    return converse


def _team(spec: ConversationSpec, client_for: ClientFactory, inputs: Mapping[str, Any]):
    agents = [AssistantAgent(participant_id, client_for(participant_id, participant.model),
                             description=participant.description,
                             system_message=prompts.fill(participant.system_message, inputs))
              for participant_id, participant in spec.participants.items()]
    stop: list[TerminationCondition] = []
    if spec.termination.max_messages is not None:
        stop.append(MaxMessageTermination(spec.termination.max_messages))
    if spec.termination.text is not None:
        stop.append(TextMentionTermination(spec.termination.text))
    condition = stop[0] if len(stop) == 1 else stop[0] | stop[1]
    if spec.pattern == "round_robin":
        return RoundRobinGroupChat(agents, termination_condition=condition)
    extra = {"selector_prompt": spec.selector_prompt} if spec.selector_prompt else {}
    return SelectorGroupChat(agents, client_for(spec.selector_id, spec.selector_model),
                             termination_condition=condition, allow_repeated_speaker=spec.allow_repeated_speaker,
                             **extra)


def _to_langchain(message: BaseChatMessage) -> lc.BaseMessage:
    if message.source == "user":
        return lc.HumanMessage(message.to_text(), name="user")
    return lc.AIMessage(message.to_text(), name=message.source)


class ConversationState(TypedDict, total=False):
    """``messages`` the conversation (the task first), ``speakers`` who spoke in order, ``stop_reason``
    AutoGen's words for why it ended."""

    inputs: dict[str, Any]
    messages: Annotated[list[lc.AnyMessage], add_messages]
    speakers: Annotated[list[str], operator.add]
    stop_reason: str


def compile_conversation(text: str, source: str) -> Definition:
    """A conversation file as a workflow of one step; the runtime's chat models serve as AutoGen clients."""
    spec = parse_conversation(text, source)

    def build(runtime: Runtime) -> StateGraph:
        client_for = getattr(runtime, "chat_client_for", None) or (
            lambda agent, model: LangChainChatClient(runtime.model_for(agent, model)))
        graph = StateGraph(ConversationState)
        graph.add_node("conversation", conversation_step(spec, client_for))
        graph.add_edge(START, "conversation")
        graph.add_edge("conversation", END)
        return graph

    agents = tuple(spec.participants) + ((spec.selector_id,) if spec.pattern == "selector" else ())
    return Definition(name=spec.name, kind="conversation", source=source, build=build, agents=agents,
                      metadata={"pattern": spec.pattern, "inputs": ",".join(spec.inputs())})


class LangChainChatClient(ChatCompletionClient):
    """An AutoGen model client over a langchain chat model, so a conversation speaks to the models the runtime
    gives every other step (an OpenAI-compatible endpoint, or the scripted model in tests). Text only: the
    conversation's participants have no tools."""

    def __init__(self, model: BaseChatModel):
        self._model = model
        self._usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    async def create(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = [], tool_choice: Any = "auto",
                     json_output: Any = None, extra_create_args: Mapping[str, Any] = {},
                     cancellation_token: Any = None) -> CreateResult:
        reply = await self._model.ainvoke([_from_autogen(message) for message in messages])
        content = reply.content if isinstance(reply.content, str) else str(reply.content)
        return CreateResult(finish_reason="stop", content=content, usage=self._usage, cached=False)

    async def create_stream(self, messages: Sequence[LLMMessage],
                            **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        yield await self.create(messages, **kwargs)

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._usage

    def total_usage(self) -> RequestUsage:
        return self._usage

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = []) -> int:
        return 0

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Any] = []) -> int:
        return 1_000_000

    @property
    def capabilities(self) -> Any:
        return self.model_info

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(vision=False, function_calling=False, json_output=False, family=ModelFamily.UNKNOWN,
                         structured_output=False)


def _from_autogen(message: LLMMessage) -> lc.BaseMessage:
    if isinstance(message, SystemMessage):
        return lc.SystemMessage(message.content)
    if isinstance(message, AssistantMessage):
        return lc.AIMessage(str(message.content), name=message.source)
    if isinstance(message, UserMessage):
        return lc.HumanMessage(message.content if isinstance(message.content, str) else str(message.content),
                               name=message.source)
    return lc.HumanMessage(str(getattr(message, "content", "")))
