"""Model access behind one small interface: ``model_for(agent, model) -> BaseChatModel``.

Production speaks to an OpenAI-compatible endpoint named in the settings (vLLM, an inference gateway, a
hosted API) through ``langchain-openai``'s ``ChatOpenAI``; the key comes from a mounted secret file (Vault →
External Secrets), never from the environment. Temperature 0 and a fixed seed make answers as repeatable as
the endpoint allows; the orchestrator's determinism claim is "same inputs and same model answers, same
run", which tests prove with the scripted model (soma_orchestrator.scripted), never the network.
"""
from __future__ import annotations

from typing import Mapping, Protocol

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr


class ModelProvider(Protocol):
    def model_for(self, agent: str, model: str | None = None) -> BaseChatModel:
        """The chat model ``agent`` speaks to; ``model`` is the name the definition asked for (or None)."""


class OpenAICompatibleProvider:
    """One endpoint, a default model, and optional aliases (a definition's ``model: fast`` → a served name).

    A model name the definition asks for that is neither an alias nor in ``allowed_models`` is refused, so a
    workflow cannot pick an arbitrary (and arbitrarily priced) model on a shared endpoint.
    """

    def __init__(self, base_url: str, api_key: SecretStr, default_model: str, *, aliases: Mapping[str, str] | None = None,
                 allowed_models: tuple[str, ...] = (), timeout_seconds: float = 60.0, max_retries: int = 2, seed: int = 0):
        self.base_url, self.api_key, self.default_model = base_url, api_key, default_model
        self.aliases = dict(aliases or {})
        self.allowed = {default_model, *allowed_models, *self.aliases.values()}
        self.timeout_seconds, self.max_retries, self.seed = timeout_seconds, max_retries, seed

    def resolve(self, model: str | None) -> str:
        name = self.aliases.get(model, model) if model else self.default_model
        if name not in self.allowed:
            raise ValueError(f"model {model!r} is not offered by this orchestrator (offered: {sorted(self.allowed)})")
        return name

    def model_for(self, agent: str, model: str | None = None) -> BaseChatModel:
        from langchain_openai import ChatOpenAI   # imported on use: tests never construct it

        return ChatOpenAI(model=self.resolve(model), base_url=self.base_url, api_key=self.api_key,
                          timeout=self.timeout_seconds, max_retries=self.max_retries, temperature=0, seed=self.seed)
