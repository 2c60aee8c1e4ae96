"""RAG providers as tools: the ``memory.search`` family.

A provider is any object with ``retrieve(tenant, collection, query, k, filters) -> list[Hit-like]`` (sync or
async): the memory gateway's adapters (LlamaIndex, Haystack, its direct Qdrant path, in apps/memory) are
such objects. Each configured provider becomes one tool, ``memory.search.<provider>`` (and the first one
also plain ``memory.search``), run in-process: providers hold clients and embedding models that a fresh
subprocess per call would reload, and they are first-party code; their limit is the call's timeout.

Two questions are asked before a provider runs: OpenFGA ``can_call`` on the tool (as for every tool) and
``can_read`` on ``memory_collection:<collection>`` for the same caller, so a tool grant never widens what a
caller may read. The tenant passed to the provider is the caller's (from the gateway), never an input field.

Settings name providers as ``{"llamaindex": "soma_memory.adapters.llamaindex:provider"}``: a callable that
returns the provider object, imported at start-up.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping, Protocol

from soma_service.openfga import AuthorizationUnavailable

from .registry import ToolSpec

COLLECTION = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
INPUT_SCHEMA = {
    "type": "object",
    "properties": {
        "collection": {"type": "string", "pattern": COLLECTION, "description": "the memory collection id"},
        "query": {"type": "string", "minLength": 1, "maxLength": 4000},
        "k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
        "filters": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]},
                    "description": "metadata field -> value, all must match"},
    },
    "required": ["collection", "query"],
    "additionalProperties": False,
}
OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"hits": {"type": "array", "items": {
        "type": "object",
        "properties": {"id": {"type": "string"}, "text": {"type": "string"}, "score": {"type": "number"},
                       "metadata": {"type": "object"}},
        "required": ["id", "text", "score"]}}},
    "required": ["hits"],
}


class RetrievalProvider(Protocol):
    def retrieve(self, tenant: str, collection: str, query: str, k: int, filters: Mapping[str, Any]) -> Any: ...


class CollectionDenied(Exception):
    pass


def _hit(item: Any) -> dict:
    if isinstance(item, Mapping):
        found = dict(item)
    else:
        found = {key: getattr(item, key) for key in ("id", "text", "score", "metadata") if hasattr(item, key)}
    found["id"], found["score"] = str(found.get("id", "")), float(found.get("score", 0.0))
    found.setdefault("metadata", {})
    return found


class _Search:
    def __init__(self, provider: RetrievalProvider):
        self.provider = provider

    async def __call__(self, arguments: dict, context: Any) -> dict:
        from .sandbox import ToolFailed
        from .service import CallRefused

        collection = arguments["collection"]
        try:
            readable = await context.fga.check(context.caller.principal, "can_read", f"memory_collection:{collection}")
        except AuthorizationUnavailable as exc:
            raise CallRefused(503, "authorization_unavailable", str(exc)) from None
        if not readable:
            raise CallRefused(403, "collection_not_permitted",
                              f"{context.caller.principal} lacks can_read on memory_collection:{collection}")
        answer = self.provider.retrieve(context.caller.tenant, collection, arguments["query"],
                                        arguments.get("k", 5), arguments.get("filters", {}))
        if inspect.isawaitable(answer):
            answer = await answer
        try:
            return {"hits": [_hit(item) for item in answer]}
        except (TypeError, ValueError) as exc:
            raise ToolFailed("tool_error", f"the provider's answer is not a list of hits: {exc}") from None


def memory_search_tools(providers: Mapping[str, RetrievalProvider], *, version: str = "1.0.0",
                        timeout_seconds: float = 10.0) -> list[ToolSpec]:
    """One ``memory.search.<name>`` tool per provider, plus ``memory.search`` for the first one."""
    specs = []
    for index, (name, provider) in enumerate(providers.items()):
        for tool_name in ([f"memory.search.{name}"] + (["memory.search"] if index == 0 else [])):
            specs.append(ToolSpec(
                name=tool_name, version=version, kind="inprocess", timeout_seconds=timeout_seconds,
                description=f"Search a memory collection of the caller's tenant through the {name} provider.",
                input_schema=INPUT_SCHEMA, output_schema=OUTPUT_SCHEMA, call=_Search(provider)))
    return specs


def load_providers(references: Mapping[str, str]) -> dict[str, RetrievalProvider]:
    """``{"name": "module:factory"}`` -> ``{"name": factory()}``; every bad reference named at once."""
    providers, problems = {}, []
    for name, reference in references.items():
        module_name, _, attribute = reference.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
            providers[name] = factory()
        except Exception as exc:  # noqa: BLE001 - reported with its name
            problems.append(f"memory provider {name} ({reference}): {type(exc).__name__}: {exc}")
            continue
        if not callable(getattr(providers[name], "retrieve", None)):
            problems.append(f"memory provider {name} ({reference}): the object has no retrieve(...) method")
    if problems:
        raise ValueError("; ".join(problems))
    return providers
