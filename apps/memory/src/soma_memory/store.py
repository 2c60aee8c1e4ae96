"""The direct path: the memory gateway's own code over qdrant-client. It also owns what every path shares
(the Qdrant client, the embedder, the chunking rule, collection names and creation), so the LlamaIndex and
Haystack adapters write exactly the collections and payloads this module reads, and the other way round.

Every read, count and delete filters on the tenant and collection in the payload as well as using the
tenant-derived collection name (naming.py): two independent walls.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Mapping, Sequence

from qdrant_client import QdrantClient
from qdrant_client.http import models as rest

from . import bm25
from .chunking import chunk_document
from .embeddings import Embedder
from .model import (DocumentIn, Hit, IngestResult, InvalidInput, Scalar, check_filters, check_metadata, chunk_id,
                    hit_from_payload)
from .naming import check_collection, check_document, check_tenant, qdrant_collection

INDEXED = ("meta.tenant", "meta.collection", "meta.document_id")


@dataclass(frozen=True)
class ChunkRule:
    size: int = 800
    overlap: int = 100


def scope_filter(tenant: str, collection: str, filters: Mapping[str, Scalar] | None = None) -> rest.Filter:
    conditions = [rest.FieldCondition(key="meta.tenant", match=rest.MatchValue(value=tenant)),
                  rest.FieldCondition(key="meta.collection", match=rest.MatchValue(value=collection))]
    for key, value in (filters or {}).items():
        conditions.append(rest.FieldCondition(key=f"meta.{key}", match=rest.MatchValue(value=value)))
    return rest.Filter(must=conditions)


class MemoryStore:
    """Collections, ingestion, retrieval and deletion over one Qdrant client."""

    name = "direct"

    def __init__(self, client: QdrantClient, embedder: Embedder, chunks: ChunkRule = ChunkRule(), *,
                 hybrid_candidates: int = 4, mode: str = "vector", max_k: int = 50):
        self.client = client
        self.embedder = embedder
        self.chunks = chunks
        self.hybrid_candidates = hybrid_candidates
        self.mode = mode
        self.max_k = max_k
        self._remote = getattr(client, "_client", None).__class__.__name__ != "QdrantLocal"
        self._created: set[str] = set()
        self._lock = threading.Lock()

    # collections ------------------------------------------------------------------------------------------
    def collection_name(self, tenant: str, collection: str) -> str:
        return qdrant_collection(tenant, collection)

    def ensure_collection(self, tenant: str, collection: str) -> str:
        """The tenant's collection, created on first write (cosine, the embedder's dimension)."""
        name = self.collection_name(tenant, collection)
        if name in self._created:
            return name
        with self._lock:
            if not self.client.collection_exists(name):
                self.client.create_collection(name, vectors_config=rest.VectorParams(
                    size=self.embedder.dimension, distance=rest.Distance.COSINE))
                if self._remote:   # local mode has no payload indexes (and warns)
                    for key in INDEXED:
                        self.client.create_payload_index(name, key, rest.PayloadSchemaType.KEYWORD)
            else:
                size = self.client.get_collection(name).config.params.vectors.size
                if size != self.embedder.dimension:
                    raise RuntimeError(f"collection {name} holds {size}-dimensional vectors, "
                                       f"the embedder {self.embedder.name} makes {self.embedder.dimension}")
            self._created.add(name)
        return name

    def exists(self, tenant: str, collection: str) -> bool:
        name = self.collection_name(tenant, collection)
        return name in self._created or self.client.collection_exists(name)

    # ingestion --------------------------------------------------------------------------------------------
    def prepare(self, tenant: str, collection: str, document: DocumentIn, where: str = "document") -> list[tuple[str, str, dict]]:
        """(chunk id, text, meta) per chunk: the one chunking rule and payload every path writes."""
        check_document(document.document_id)
        metadata = check_metadata(document.metadata, f"{where}.metadata")
        if not isinstance(document.text, str) or not document.text.strip():
            raise InvalidInput(f"{where}.text: must be non-empty text")
        out = []
        for chunk in chunk_document(document.text, self.chunks.size, self.chunks.overlap, markdown=document.markdown):
            ident = chunk_id(tenant, collection, document.document_id, chunk.index)
            meta = {**metadata, "tenant": tenant, "collection": collection, "document_id": document.document_id,
                    "chunk_index": chunk.index, "chunk_id": ident, "section": chunk.section}
            out.append((ident, chunk.text, meta))
        return out

    def ingest(self, tenant: str, collection: str, documents: Sequence[DocumentIn]) -> list[IngestResult]:
        """Each document replaces its earlier version (its old chunks are deleted first)."""
        check_tenant(tenant), check_collection(collection)
        prepared = [self.prepare(tenant, collection, d, f"documents[{i}]") for i, d in enumerate(documents)]
        name = self.ensure_collection(tenant, collection)
        results = []
        for document, chunks in zip(documents, prepared):
            replaced = self.delete(tenant, collection, document.document_id)
            vectors = self.embedder.embed([text for _, text, _ in chunks])
            self.client.upsert(name, points=[rest.PointStruct(id=ident, vector=vector, payload={"content": text, "meta": meta})
                                             for (ident, text, meta), vector in zip(chunks, vectors)], wait=True)
            results.append(IngestResult(document.document_id, len(chunks), replaced))
        return results

    # retrieval --------------------------------------------------------------------------------------------
    def retrieve(self, tenant: str, collection: str, query: str, k: int = 5,
                 filters: Mapping[str, Scalar] | None = None, *, mode: str | None = None) -> list[Hit]:
        """``vector``: cosine nearest chunks. ``hybrid``: the vector search's top ``k * hybrid_candidates``
        re-ranked by BM25 and fused with reciprocal rank fusion (bm25.py)."""
        filters = check_filters(filters)
        mode = mode or self.mode
        if mode not in ("vector", "hybrid"):
            raise InvalidInput(f"mode {mode!r}: expected vector or hybrid")
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query: must be non-empty text")
        if not 1 <= k <= self.max_k:
            raise InvalidInput(f"k: {k} is outside 1..{self.max_k}")
        if not self.exists(tenant, collection):
            return []
        limit = k * self.hybrid_candidates if mode == "hybrid" else k
        points = self.client.query_points(self.collection_name(tenant, collection), query=self.embedder.embed([query])[0],
                                          query_filter=scope_filter(tenant, collection, filters), limit=limit,
                                          with_payload=True).points
        hits = [hit_from_payload(point.payload, point.score) for point in points]
        if mode == "vector":
            return hits
        fused = bm25.fuse(range(len(hits)), bm25.bm25_scores(query, [f"{h.section}\n{h.text}" for h in hits]))
        return [Hit(**{**hits[i].__dict__, "score": score}) for i, score in fused[:k]]

    def list(self, tenant: str, collection: str, filters: Mapping[str, Scalar] | None = None, *,
             limit: int = 50, offset: str | None = None) -> tuple[list[Hit], str | None]:
        """Chunks in storage order, a page at a time (``offset`` is the previous page's ``next``)."""
        filters = check_filters(filters)
        if not self.exists(tenant, collection):
            return [], None
        records, following = self.client.scroll(self.collection_name(tenant, collection),
                                                scroll_filter=scope_filter(tenant, collection, filters),
                                                limit=limit, offset=offset, with_payload=True)
        return [hit_from_payload(r.payload, 0.0) for r in records], (str(following) if following is not None else None)

    def count(self, tenant: str, collection: str, filters: Mapping[str, Scalar] | None = None) -> int:
        if not self.exists(tenant, collection):
            return 0
        return self.client.count(self.collection_name(tenant, collection),
                                 count_filter=scope_filter(tenant, collection, check_filters(filters)), exact=True).count

    # deletion ---------------------------------------------------------------------------------------------
    def delete(self, tenant: str, collection: str, document_id: str) -> int:
        """Remove every chunk of the document from Qdrant (points deleted, not flagged); returns how many."""
        check_document(document_id)
        if not self.exists(tenant, collection):
            return 0
        selector = scope_filter(tenant, collection, {"document_id": document_id})
        name = self.collection_name(tenant, collection)
        found = self.client.count(name, count_filter=selector, exact=True).count
        if found:
            self.client.delete(name, points_selector=rest.FilterSelector(filter=selector), wait=True)
        return found

    def drop(self, tenant: str, collection: str) -> bool:
        """Delete the whole collection (every document, the Qdrant collection itself)."""
        name = self.collection_name(tenant, collection)
        self._created.discard(name)
        return bool(self.client.collection_exists(name) and self.client.delete_collection(name))
