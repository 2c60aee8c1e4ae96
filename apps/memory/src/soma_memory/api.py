"""The memory gateway's HTTP API (behind the gateway, which adds ``X-Soma-Tenant`` / ``X-Soma-Principal``).

| method and path | relation | audit action |
| --- | --- | --- |
| ``GET /collections/{collection_id}/records`` (``query`` = search, none = list) | ``can_read`` | ``memory.read`` (denials) |
| ``POST /collections/{collection_id}/records`` (ingest; a document replaces its earlier version) | ``can_write`` | ``memory.write`` |
| ``DELETE /collections/{collection_id}/records/{document_id}`` | ``can_write`` | ``memory.delete`` |
| ``DELETE /collections/{collection_id}`` (the whole collection) | ``can_write`` | ``memory.collection.delete`` |

Each request asks OpenFGA first and touches Qdrant only when allowed. ``provider`` chooses the path that
does the work (``direct``, ``llamaindex``, ``haystack``): all three use the same collections.
"""
from __future__ import annotations

from typing import Literal

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from soma_service import ServiceError, current_request_id

from .access import Caller, caller_from
from .adapters import PROVIDERS
from .model import DocumentIn, InvalidInput
from .naming import NameError_, check_collection, check_document

Provider = Literal["direct", "llamaindex", "haystack"]


class DocumentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    document_id: str = Field(description="the caller's id; re-ingesting it replaces the earlier version")
    text: str = Field(min_length=1)
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict, description="filterable, stored with every chunk")
    format: Literal["markdown", "text"] = Field(default="markdown", description="markdown: chunks know their section")


class IngestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    documents: list[DocumentBody] = Field(min_length=1)
    provider: Provider = "direct"


def build_router(runtime) -> APIRouter:
    """``runtime`` holds the store, providers, guard, limits and worker limiter (app.py opens it)."""
    router = APIRouter(tags=["memory"])

    def who(request: Request, collection_id: str) -> Caller:
        caller = caller_from(request.headers)
        try:
            check_collection(collection_id)
        except NameError_ as exc:
            raise ServiceError(400, "invalid_request", str(exc)) from None
        return caller

    async def work(function, *args, **kwargs):
        try:
            return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs), limiter=runtime.limiter)
        except (InvalidInput, NameError_) as exc:
            raise ServiceError(400, "invalid_request", str(exc)) from None
        except runtime.unavailable as exc:
            raise ServiceError(503, "qdrant_unavailable", f"Qdrant cannot be reached: {type(exc).__name__}") from None

    @router.get("/collections/{collection_id}/records", summary="search (query) or list the collection's chunks")
    async def read(request: Request, collection_id: str,
                   query: str | None = Query(default=None, max_length=2000, description="search text; absent = list"),
                   k: int | None = Query(default=None, ge=1, description="hits to return (search)"),
                   mode: Literal["vector", "hybrid"] | None = Query(default=None, description="direct path only"),
                   provider: Provider = "direct",
                   filter: list[str] = Query(default=[], description="key:value, equality on metadata (string values), repeatable"),
                   limit: int = Query(default=50, ge=1, le=500, description="page size (list)"),
                   offset: str | None = Query(default=None, description="the previous page's next (list)")):
        caller = who(request, collection_id)
        request_id = current_request_id.get() or "-"
        await runtime.guard.authorize(caller, "can_read", collection_id, "memory.read", request_id)
        filters = {}
        for item in filter:
            key, sep, value = item.partition(":")
            if not sep:
                raise ServiceError(400, "invalid_request", f"query.filter: {item!r} is not key:value")
            filters[key] = value
        if query is None:
            hits, following = await work(runtime.store.list, caller.tenant, collection_id, filters, limit=limit, offset=offset)
            return {"collection": collection_id, "records": [h.as_json() for h in hits], "next": following}
        k = k or runtime.settings.default_k
        if k > runtime.settings.max_k:
            raise ServiceError(400, "invalid_request", f"query.k: {k} exceeds {runtime.settings.max_k}")
        if provider == "direct":
            hits = await work(runtime.store.retrieve, caller.tenant, collection_id, query, k, filters, mode=mode)
        else:
            if mode:
                raise ServiceError(400, "invalid_request", "query.mode: only the direct provider has modes")
            hits = await work(runtime.call, provider, "retrieve", caller.tenant, collection_id, query, k, filters)
        return {"collection": collection_id, "provider": provider, "hits": [h.as_json() for h in hits]}

    @router.post("/collections/{collection_id}/records", status_code=201, summary="ingest documents (chunked, embedded)")
    async def write(request: Request, collection_id: str, body: IngestBody):
        caller = who(request, collection_id)
        request_id = current_request_id.get() or "-"
        await runtime.guard.authorize(caller, "can_write", collection_id, "memory.write", request_id)
        limits = runtime.settings
        if len(body.documents) > limits.max_documents_per_request:
            raise ServiceError(400, "invalid_request", f"body.documents: at most {limits.max_documents_per_request} per request")
        for i, document in enumerate(body.documents):
            if len(document.text) > limits.max_document_chars:
                raise ServiceError(400, "invalid_request", f"body.documents[{i}].text: longer than {limits.max_document_chars} characters")
            try:
                check_document(document.document_id)
            except NameError_ as exc:
                raise ServiceError(400, "invalid_request", f"body.documents[{i}].document_id: {exc}") from None
        documents = [DocumentIn(d.document_id, d.text, d.metadata, d.format == "markdown") for d in body.documents]
        await runtime.guard.allow(caller, "memory.write", collection_id, request_id,
                                  **{"documents": str(len(documents)), "provider": body.provider})
        results = await work(runtime.call, body.provider, "ingest", caller.tenant, collection_id, documents)
        return {"collection": collection_id, "provider": body.provider,
                "documents": [{"document_id": r.document_id, "chunks": r.chunks, "replaced": r.replaced} for r in results]}

    @router.delete("/collections/{collection_id}/records/{document_id}", summary="delete every chunk of a document")
    async def delete(request: Request, collection_id: str, document_id: str):
        caller = who(request, collection_id)
        request_id = current_request_id.get() or "-"
        try:
            check_document(document_id)
        except NameError_ as exc:
            raise ServiceError(400, "invalid_request", str(exc)) from None
        await runtime.guard.authorize(caller, "can_write", collection_id, "memory.delete", request_id)
        await runtime.guard.allow(caller, "memory.delete", collection_id, request_id, **{"document.id": document_id})
        deleted = await work(runtime.store.delete, caller.tenant, collection_id, document_id)
        if not deleted:
            raise ServiceError(404, "document_not_found", f"no document {document_id!r} in collection {collection_id!r}")
        return {"collection": collection_id, "document_id": document_id, "deleted_chunks": deleted}

    @router.delete("/collections/{collection_id}", summary="delete the whole collection")
    async def drop(request: Request, collection_id: str):
        caller = who(request, collection_id)
        request_id = current_request_id.get() or "-"
        await runtime.guard.authorize(caller, "can_write", collection_id, "memory.collection.delete", request_id)
        await runtime.guard.allow(caller, "memory.collection.delete", collection_id, request_id)
        dropped = await work(runtime.store.drop, caller.tenant, collection_id)
        if not dropped:
            raise ServiceError(404, "collection_not_found", f"no collection {collection_id!r}")
        return {"collection": collection_id, "deleted": True}

    assert set(PROVIDERS) == set(Provider.__args__)
    return router
