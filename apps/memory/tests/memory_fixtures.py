"""Shared by the memory gateway's test modules (a uniquely named module: the apps' test folders are not
packages). The decisions of the OpenFGA stand-in follow the Governance model's store test
(components/governance/openfga/model.fga.yaml): acme-triage reads acme-kb, acme-support writes it, the
globex workflow's cross-tenant grant is never honoured."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

HERE = Path(__file__).parent
REPO = HERE.parents[2]
STORE_ID, MODEL_ID = "01JH6Q8ZK3P5R7T9V2X4Y6A8C0", "01JH6Q9B1D3F5H7K9M2N4P6R8S"
ACME = {"x-soma-tenant": "acme", "x-soma-principal": "agent:acme-support"}           # can_read, can_write
READER = {"x-soma-tenant": "acme", "x-soma-principal": "workflow:acme-triage"}      # can_read only
GLOBEX = {"x-soma-tenant": "globex", "x-soma-principal": "workflow:globex-sync"}   # reads globex-kb only
DECISIONS = {
    ("agent:acme-support", "can_read", "memory_collection:acme-kb"): True,
    ("agent:acme-support", "can_write", "memory_collection:acme-kb"): True,
    ("workflow:acme-triage", "can_read", "memory_collection:acme-kb"): True,
    ("workflow:acme-triage", "can_write", "memory_collection:acme-kb"): False,
    ("workflow:globex-sync", "can_read", "memory_collection:acme-kb"): False,
    ("workflow:globex-sync", "can_read", "memory_collection:globex-kb"): True,
    ("workflow:globex-sync", "can_write", "memory_collection:globex-kb"): True,
    # globex may read and write a collection that it, too, calls "acme-kb" in OpenFGA's eyes only in this test,
    # to show the Qdrant side keeps tenants apart even when authorization is wrongly granted
    ("workflow:globex-sync", "can_write", "memory_collection:shared-name"): True,
    ("workflow:globex-sync", "can_read", "memory_collection:shared-name"): True,
    ("agent:acme-support", "can_write", "memory_collection:shared-name"): True,
    ("agent:acme-support", "can_read", "memory_collection:shared-name"): True,
}


class RecordingAuditSink:
    def __init__(self):
        self.events: list[dict] = []
        self.broken = False

    async def start(self):
        return None

    async def emit(self, event):
        if self.broken:
            raise ConnectionError("sink down")
        self.events.append(event)

    async def stop(self):
        return None


def memory_settings(tmp_path, fga_url: str, **extra):
    from soma_memory.settings import MemorySettings

    (tmp_path / "openfga_store_id").write_text(STORE_ID + "\n")
    (tmp_path / "openfga_model_id").write_text(MODEL_ID + "\n")
    environ = {"SOMA_OPENFGA_API_URL": fga_url, "SOMA_AUDIT_SINK": "log", "SOMA_SECRETS_DIR": str(tmp_path),
               "SOMA_QDRANT_PATH": str(tmp_path / "qdrant")}
    environ.update({f"SOMA_{k.upper()}": str(v) for k, v in extra.items()})
    return MemorySettings.from_env(environ)


@contextlib.contextmanager
def running_memory(settings, qdrant, embedder):
    """The app in-process (lifespan run by Starlette's TestClient) with the given client and embedder."""
    from fastapi.testclient import TestClient

    from soma_memory.app import Dependencies, build_app

    audit = RecordingAuditSink()
    app = build_app(settings, Dependencies(audit=audit, qdrant=qdrant, embedder=embedder), configure_logging=False)
    with TestClient(app) as client:
        client.audit = audit
        client.runtime = app.state.runtime
        yield client
