"""The memory gateway as a SomaAgentHub service: ``soma_service.create_app`` with the API router.

The lifespan opens the Qdrant client (the platform's server, or local mode), loads the embedding model once,
and registers readiness checks for Qdrant and OpenFGA. Tests hand in their own client, embedder and audit
sink through ``Dependencies`` (the real model loaded once per test session, or the hashing embedder).
"""
from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass, field
from typing import AsyncIterator

import anyio
import httpx
from fastapi import FastAPI
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from soma_service import ReadinessCheck, create_app
from soma_service.audit import AuditSink

from .access import Guard
from .adapters import provider as make_provider
from .api import build_router
from .embeddings import Embedder, SentenceTransformerEmbedder
from .model import RetrievalProvider
from .settings import MemorySettings
from .store import ChunkRule, MemoryStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")


@dataclass
class Dependencies:
    """What the lifespan would otherwise open itself."""

    audit: AuditSink | None = None
    qdrant: QdrantClient | None = None
    embedder: Embedder | None = None


@dataclass
class Runtime:
    settings: MemorySettings
    store: MemoryStore | None = None
    guard: Guard | None = None
    limiter: anyio.CapacityLimiter | None = None
    unavailable: tuple = (ResponseHandlingException, UnexpectedResponse, httpx.TransportError, ConnectionError)
    providers: dict[str, RetrievalProvider] = field(default_factory=dict)

    def provider(self, name: str) -> RetrievalProvider:
        if name not in self.providers:
            self.providers[name] = make_provider(name, self.store)
        return self.providers[name]

    def call(self, name: str, method: str, *args, **kwargs):
        """A provider's method, run in a worker thread by the API (the first use imports its framework)."""
        return getattr(self.provider(name), method)(*args, **kwargs)


def open_qdrant(settings: MemorySettings) -> QdrantClient:
    if settings.qdrant_path:
        return QdrantClient(path=settings.qdrant_path)
    key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    return QdrantClient(url=settings.qdrant_url, api_key=key, timeout=settings.qdrant_timeout_seconds)


def build_app(settings: MemorySettings, deps: Dependencies | None = None, **base) -> FastAPI:
    deps = deps or Dependencies()
    runtime = Runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        qdrant = deps.qdrant or open_qdrant(settings)
        embedder = deps.embedder or await anyio.to_thread.run_sync(
            functools.partial(SentenceTransformerEmbedder, settings.embedding_model_path, batch_size=settings.embedding_batch_size))
        runtime.store = MemoryStore(qdrant, embedder, ChunkRule(settings.chunk_size, settings.chunk_overlap),
                                    hybrid_candidates=settings.hybrid_candidates, mode=settings.retrieval_mode,
                                    max_k=settings.max_k)
        # local mode is one process, one thread at a time; a server takes parallel calls
        runtime.limiter = anyio.CapacityLimiter(1 if settings.qdrant_path or deps.qdrant else settings.worker_threads)
        plain = httpx.AsyncClient(timeout=httpx.Timeout(settings.openfga_timeout_seconds))
        fga = settings.openfga_client(plain)
        audit = deps.audit or settings.audit_sink_for("soma-memory")
        runtime.guard = Guard(fga, audit)
        await audit.start()
        service = app.state.service
        service.add_check(ReadinessCheck("qdrant", functools.partial(_qdrant_answers, runtime)))
        service.add_check(ReadinessCheck("openfga", functools.partial(_reachable, plain, settings.openfga_api_url.rstrip("/") + "/healthz")))
        try:
            yield
        finally:
            await audit.stop()
            await plain.aclose()
            if deps.qdrant is None:
                qdrant.close()

    app = create_app(settings, routers=[build_router(runtime)], lifespan=lifespan, title="SomaAgentHub memory gateway",
                     description="Per-tenant long-term memory in Qdrant: ingest, search, delete; OpenFGA per collection.", **base)
    app.state.runtime = runtime
    return app


async def _qdrant_answers(runtime: Runtime) -> bool:
    await anyio.to_thread.run_sync(runtime.store.client.get_collections, limiter=runtime.limiter)
    return True


async def _reachable(client: httpx.AsyncClient, url: str) -> bool:
    return (await client.get(url)).status_code == 200
