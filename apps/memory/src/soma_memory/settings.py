"""The memory gateway's settings (``SOMA_`` + upper-case name; secrets only from mounted files).

Qdrant: ``QDRANT_URL`` (the platform's Qdrant, e.g. ``http://qdrant.soma-agents:6333``, its API key from the
``qdrant_api_key`` secret file) or ``QDRANT_PATH`` (qdrant-client's local mode in a folder: development and the
evaluation; one process per folder). Exactly one of them.

OpenFGA's store and model IDs are secret files as for the gateway (Governance publishes them through Vault).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from soma_service import ServiceSettings
from soma_service.audit import AuditSettings
from soma_service.openfga import OpenFgaSettings


class MemorySettings(AuditSettings, OpenFgaSettings, ServiceSettings):
    service_name: str = "memory"

    # Qdrant
    qdrant_url: str | None = Field(default=None, pattern=r"^https?://[^/]+", description="the platform's Qdrant (REST)")
    qdrant_api_key: SecretStr | None = None
    qdrant_path: str | None = Field(default=None, min_length=1, description="local-mode folder instead of a server")
    qdrant_timeout_seconds: int = Field(default=10, ge=1)

    # embeddings, chunking, retrieval
    embedding_model_path: str | None = Field(default=None, description="a sentence-transformers folder; unset = the packaged all-MiniLM-L6-v2")
    embedding_batch_size: int = Field(default=32, ge=1, le=512)
    chunk_size: int = Field(default=800, ge=100, le=8000, description="characters per chunk (MiniLM reads ~1,000)")
    chunk_overlap: int = Field(default=100, ge=0, description="characters shared by neighbouring chunks")
    retrieval_mode: Literal["vector", "hybrid"] = "hybrid"
    hybrid_candidates: int = Field(default=4, ge=1, le=20, description="hybrid re-ranks k * this many vector candidates")
    default_k: int = Field(default=5, ge=1)
    max_k: int = Field(default=50, ge=1, le=500)
    max_documents_per_request: int = Field(default=64, ge=1)
    max_document_chars: int = Field(default=1_000_000, ge=1)
    worker_threads: int = Field(default=4, ge=1, description="Qdrant and model calls run in at most this many threads (1 in local mode)")


    @model_validator(mode="after")
    def _consistent(self) -> "MemorySettings":
        if (self.qdrant_url is None) == (self.qdrant_path is None):
            raise ValueError("set exactly one of SOMA_QDRANT_URL (a Qdrant server) and SOMA_QDRANT_PATH (local mode)")
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"SOMA_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than SOMA_CHUNK_SIZE ({self.chunk_size})")
        if self.default_k > self.max_k:
            raise ValueError(f"SOMA_DEFAULT_K ({self.default_k}) exceeds SOMA_MAX_K ({self.max_k})")
        return self
