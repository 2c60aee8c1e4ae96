"""LlamaIndex over the memory gateway's collections: ``VectorStoreIndex`` on llama-index-vector-stores-qdrant's
``QdrantVectorStore``, with the gateway's embedder as LlamaIndex's embed model.

Two adjustments make LlamaIndex share the direct path's data instead of keeping its own:
- reading: ``text_key="content"``; our points carry no ``_node_content``, so the store rebuilds each node
  from ``content`` and the payload (``meta``), and filters name ``meta.<key>`` (a Qdrant nested key);
- writing: ``_build_points`` is overridden to store the shared payload (``content`` + ``meta``) in place
  of LlamaIndex's serialised node, under the collection's unnamed vector (the store detects it).
"""
from __future__ import annotations

from typing import Any, List, Mapping, Sequence

from llama_index.core import VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import FilterCondition, MetadataFilter, MetadataFilters
from llama_index.vector_stores.qdrant import QdrantVectorStore
from pydantic import PrivateAttr
from qdrant_client.http import models as rest

from ..embeddings import Embedder
from ..model import DocumentIn, Hit, IngestResult, Scalar, check_filters, hit_from_payload
from ..naming import check_collection, check_tenant
from ..store import MemoryStore


class GatewayEmbedding(BaseEmbedding):
    """The memory gateway's embedder as a LlamaIndex embed model."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any):
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embedder.embed([query])[0]

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embedder.embed([text])[0]

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._embedder.embed(texts)


class SharedPayloadQdrantStore(QdrantVectorStore):
    """``QdrantVectorStore`` writing the memory gateway's payload layout."""

    def _build_points(self, nodes, sparse_vector_name):
        points, ids = [], []
        for node in nodes:
            vector = node.get_embedding()
            points.append(rest.PointStruct(id=node.node_id, payload={"content": node.get_content(), "meta": dict(node.metadata)},
                                           vector=vector if self.dense_vector_name == "" else {self.dense_vector_name: vector}))
            ids.append(node.node_id)
        return points, ids


def _filters(tenant: str, collection: str, filters: Mapping[str, Scalar]) -> MetadataFilters:
    pairs = {"tenant": tenant, "collection": collection, **filters}
    return MetadataFilters(filters=[MetadataFilter(key=f"meta.{key}", value=value) for key, value in pairs.items()],
                           condition=FilterCondition.AND)


class LlamaIndexProvider:
    name = "llamaindex"

    def __init__(self, store: MemoryStore):
        self.store = store
        self.embed_model = GatewayEmbedding(store.embedder, embed_batch_size=32)

    def _index(self, tenant: str, collection: str) -> tuple[VectorStoreIndex, SharedPayloadQdrantStore]:
        vector_store = SharedPayloadQdrantStore(collection_name=self.store.collection_name(tenant, collection),
                                                client=self.store.client, text_key="content")
        return VectorStoreIndex.from_vector_store(vector_store, embed_model=self.embed_model), vector_store

    def ingest(self, tenant: str, collection: str, documents: Sequence[DocumentIn]) -> list[IngestResult]:
        check_tenant(tenant), check_collection(collection)
        prepared = [self.store.prepare(tenant, collection, d, f"documents[{i}]") for i, d in enumerate(documents)]
        self.store.ensure_collection(tenant, collection)
        index, vector_store = self._index(tenant, collection)
        results = []
        for document, chunks in zip(documents, prepared):
            replaced = self.delete(tenant, collection, document.document_id)
            # metadata stays out of the embedded text (LlamaIndex prepends it by default), as on the direct path
            index.insert_nodes([TextNode(id_=ident, text=text, metadata=meta, excluded_embed_metadata_keys=list(meta),
                                         excluded_llm_metadata_keys=list(meta)) for ident, text, meta in chunks])
            results.append(IngestResult(document.document_id, len(chunks), replaced))
        return results

    def retrieve(self, tenant: str, collection: str, query: str, k: int = 5,
                 filters: Mapping[str, Scalar] | None = None) -> list[Hit]:
        filters = check_filters(filters)
        if not self.store.exists(tenant, collection):
            return []
        index, _ = self._index(tenant, collection)
        retriever = index.as_retriever(similarity_top_k=k, filters=_filters(tenant, collection, filters))
        return [hit_from_payload({"content": found.node.get_content(), "meta": found.node.metadata.get("meta", {})},
                                 found.score or 0.0) for found in retriever.retrieve(query)]

    def delete(self, tenant: str, collection: str, document_id: str) -> int:
        if not self.store.exists(tenant, collection):
            return 0
        found = self.store.count(tenant, collection, {"document_id": document_id})
        if found:
            _, vector_store = self._index(tenant, collection)
            vector_store.delete_nodes(filters=_filters(tenant, collection, {"document_id": document_id}))
        return found
