"""The shapes every retrieval path shares: what goes in (``DocumentIn``), what comes out (``Hit``), and the
one payload layout of a chunk in Qdrant that the direct path, LlamaIndex and Haystack all read and write.

Payload of a point: ``{"content": <chunk text>, "meta": {tenant, collection, document_id, chunk_index,
chunk_id, section, ...caller metadata}}``. It is Haystack's own document layout (``content`` + nested
``meta``), which LlamaIndex reads through its ``text_key`` (set to ``content``); filters address
``meta.<key>`` in all three.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence, Union

Scalar = Union[str, int, float, bool]
RESERVED = ("tenant", "collection", "document_id", "chunk_index", "chunk_id", "section")
META_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
CHUNK_NAMESPACE = uuid.UUID("6f1c0d2e-5b1a-4f3e-9a63-3c1f4f1b7d10")


class InvalidInput(ValueError):
    """Bad input (a document, a filter): the message names what is wrong and where."""


@dataclass(frozen=True)
class DocumentIn:
    document_id: str
    text: str
    metadata: Mapping[str, Scalar] = field(default_factory=dict)
    markdown: bool = True


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    document_id: str
    chunk_index: int
    section: str
    text: str
    score: float
    metadata: Mapping[str, Scalar]

    def as_json(self) -> dict:
        return {"chunk_id": self.chunk_id, "document_id": self.document_id, "chunk_index": self.chunk_index,
                "section": self.section, "text": self.text, "score": self.score, "metadata": dict(self.metadata)}


@dataclass(frozen=True)
class IngestResult:
    document_id: str
    chunks: int
    replaced: int     # chunks of an earlier version removed first


class RetrievalProvider(Protocol):
    """What the tool service loads as a RAG provider: the direct path, or an adapter over the same collections.

    Callers pass the tenant they verified; authorization (OpenFGA) is the caller's duty before any call.
    """

    name: str

    def ingest(self, tenant: str, collection: str, documents: Sequence[DocumentIn]) -> list[IngestResult]: ...

    def retrieve(self, tenant: str, collection: str, query: str, k: int = 5,
                 filters: Mapping[str, Scalar] | None = None) -> list[Hit]: ...

    def delete(self, tenant: str, collection: str, document_id: str) -> int: ...


def chunk_id(tenant: str, collection: str, document_id: str, index: int) -> str:
    return str(uuid.uuid5(CHUNK_NAMESPACE, f"{tenant}\x00{collection}\x00{document_id}\x00{index}"))


def check_metadata(metadata: Mapping, where: str) -> dict[str, Scalar]:
    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"{where}: metadata must be an object")
    for key, value in metadata.items():
        if not isinstance(key, str) or not META_KEY.match(key):
            raise InvalidInput(f"{where}.{key}: metadata keys must match {META_KEY.pattern}")
        if key in RESERVED:
            raise InvalidInput(f"{where}.{key}: reserved (set by the memory gateway): {', '.join(RESERVED)}")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"{where}.{key}: values must be strings, numbers or booleans")
    return dict(metadata)


def check_filters(filters: Mapping | None) -> dict[str, Scalar]:
    """Filters are equality on metadata keys (``document_id`` and ``section`` included); tenant and collection
    are never the caller's to set."""
    filters = dict(filters or {})
    for key, value in filters.items():
        if key in ("tenant", "collection", "chunk_id"):
            raise InvalidInput(f"filter {key}: set by the memory gateway from the request, not filterable")
        if not isinstance(key, str) or not META_KEY.match(key):
            raise InvalidInput(f"filter {key!r}: keys must match {META_KEY.pattern}")
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidInput(f"filter {key}: values must be strings, numbers or booleans")
    return filters


def hit_from_payload(payload: Mapping, score: float) -> Hit:
    meta = dict(payload.get("meta") or {})
    return Hit(chunk_id=str(meta.pop("chunk_id", "")), document_id=str(meta.pop("document_id", "")),
               chunk_index=int(meta.pop("chunk_index", 0)), section=str(meta.pop("section", "")),
               text=str(payload.get("content") or ""), score=float(score),
               metadata={k: v for k, v in meta.items() if k not in ("tenant", "collection")})
