"""Haystack over the memory gateway's collections: qdrant-haystack's ``QdrantDocumentStore`` and
``QdrantEmbeddingRetriever`` in Haystack pipelines, with the gateway's embedder as Haystack components.

The shared payload layout (``content`` + ``meta``) is Haystack's own, so Haystack reads the direct path's
points as they are and writes points the direct path reads (plus Haystack's ``id``/``blob``/``score`` keys,
which the other paths ignore). The document store is given the service's Qdrant client instead of opening its
own: one client per process (the local mode used in tests and the evaluation locks its folder, and ``:memory:``
is private to one client).
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from haystack import Document, Pipeline, component
from haystack.components.writers import DocumentWriter
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from qdrant_client import QdrantClient

from ..embeddings import Embedder
from ..model import DocumentIn, Hit, IngestResult, Scalar, check_filters, hit_from_payload
from ..naming import check_collection, check_tenant
from ..store import MemoryStore


@component
class GatewayTextEmbedder:
    """The memory gateway's embedder for a query (Haystack's text-embedder contract)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, Any]:
        return {"embedding": self.embedder.embed([text])[0]}


@component
class GatewayDocumentEmbedder:
    """The memory gateway's embedder for documents (Haystack's document-embedder contract)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        vectors = self.embedder.embed([d.content or "" for d in documents])
        return {"documents": [Document(id=d.id, content=d.content, meta=d.meta, embedding=v) for d, v in zip(documents, vectors)]}


class SharedClientDocumentStore(QdrantDocumentStore):
    """``QdrantDocumentStore`` on a client it is given (its own constructor always opens a new one)."""

    def __init__(self, client: QdrantClient, **kwargs: Any):
        super().__init__(**kwargs)
        self._shared_client = client

    def _initialize_client(self) -> None:
        if self._client is None:
            self._client = self._shared_client
            self._set_up_collection(self.index, self.embedding_dim, False, self.similarity, False, False,
                                    self.on_disk, self.payload_fields_to_index)   # checks dimension and distance

    def close(self) -> None:   # the client is the service's, not ours to close
        self._client = None


def _filters(tenant: str, collection: str, filters: Mapping[str, Scalar]) -> dict:
    pairs = {"tenant": tenant, "collection": collection, **filters}
    return {"operator": "AND", "conditions": [{"field": f"meta.{key}", "operator": "==", "value": value}
                                              for key, value in pairs.items()]}


class HaystackProvider:
    name = "haystack"

    def __init__(self, store: MemoryStore):
        self.store = store

    def _document_store(self, tenant: str, collection: str) -> SharedClientDocumentStore:
        return SharedClientDocumentStore(self.store.client, index=self.store.collection_name(tenant, collection),
                                         embedding_dim=self.store.embedder.dimension, similarity="cosine",
                                         progress_bar=False)

    def ingest(self, tenant: str, collection: str, documents: Sequence[DocumentIn]) -> list[IngestResult]:
        check_tenant(tenant), check_collection(collection)
        prepared = [self.store.prepare(tenant, collection, d, f"documents[{i}]") for i, d in enumerate(documents)]
        self.store.ensure_collection(tenant, collection)
        document_store = self._document_store(tenant, collection)
        pipeline = Pipeline()
        pipeline.add_component("embedder", GatewayDocumentEmbedder(self.store.embedder))
        pipeline.add_component("writer", DocumentWriter(document_store, policy=DuplicatePolicy.OVERWRITE))
        pipeline.connect("embedder.documents", "writer.documents")
        results = []
        for document, chunks in zip(documents, prepared):
            replaced = self.delete(tenant, collection, document.document_id)
            pipeline.run({"embedder": {"documents": [Document(id=ident, content=text, meta=meta) for ident, text, meta in chunks]}})
            results.append(IngestResult(document.document_id, len(chunks), replaced))
        return results

    def retrieve(self, tenant: str, collection: str, query: str, k: int = 5,
                 filters: Mapping[str, Scalar] | None = None) -> list[Hit]:
        filters = check_filters(filters)
        if not self.store.exists(tenant, collection):
            return []
        pipeline = Pipeline()
        pipeline.add_component("embedder", GatewayTextEmbedder(self.store.embedder))
        pipeline.add_component("retriever", QdrantEmbeddingRetriever(self._document_store(tenant, collection), top_k=k))
        pipeline.connect("embedder.embedding", "retriever.query_embedding")
        found = pipeline.run({"embedder": {"text": query}, "retriever": {"filters": _filters(tenant, collection, filters)}})
        return [hit_from_payload({"content": d.content, "meta": d.meta}, d.score or 0.0) for d in found["retriever"]["documents"]]

    def delete(self, tenant: str, collection: str, document_id: str) -> int:
        if not self.store.exists(tenant, collection):
            return 0
        return self._document_store(tenant, collection).delete_by_filter(
            _filters(tenant, collection, {"document_id": document_id}))
