"""RAG framework adapters behind the memory gateway's ``RetrievalProvider`` interface (model.py). Each reads
and writes the direct path's collections and payload layout, with the direct path's embedder wrapped for its
framework, so results are comparable and data written by one path is read by the others."""
from __future__ import annotations

from ..model import RetrievalProvider
from ..store import MemoryStore

PROVIDERS = ("direct", "llamaindex", "haystack")


def provider(name: str, store: MemoryStore) -> RetrievalProvider:
    """The provider called ``name`` over ``store``'s client, embedder and chunking (imports the framework lazily)."""
    if name == "direct":
        return store
    if name == "llamaindex":
        from .llamaindex import LlamaIndexProvider
        return LlamaIndexProvider(store)
    if name == "haystack":
        from .haystack import HaystackProvider
        return HaystackProvider(store)
    raise ValueError(f"provider {name!r}: expected one of {', '.join(PROVIDERS)}")
