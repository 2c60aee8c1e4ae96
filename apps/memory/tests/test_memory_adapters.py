"""LlamaIndex and Haystack behind the memory gateway's interface, on the same collections as the direct path:
each reads what the direct path wrote, the direct path (and the other adapter) reads what each wrote, both
honour metadata filters and tenants, and an adapter's delete removes the points. Real model throughout."""
from __future__ import annotations

import pytest
from qdrant_client import QdrantClient

from soma_memory.adapters import provider
from soma_memory.model import DocumentIn
from soma_memory.naming import qdrant_collection
from soma_memory.store import ChunkRule, MemoryStore

DIRECT_DOC = """# Rotation
The identity service rotates its JWT signing key in Vault transit; old keys stay in the JWKS until their tokens expire.

# Rate limits
The gateway limits each tenant's requests per second with a token bucket kept in Redis.
"""
LLAMA_DOC = "# Backups\nPostgreSQL base backups go to object storage every night; WAL is archived continuously."
HAYSTACK_DOC = "# Alerts\nAlertmanager pages the on-call engineer when the error budget burns fourteen times too fast."


@pytest.fixture(scope="module")
def store(minilm):
    store = MemoryStore(QdrantClient(":memory:"), minilm, ChunkRule(size=300, overlap=30))
    store.ingest("acme", "kb", [DocumentIn("security.md", DIRECT_DOC, {"area": "security"})])
    return store


@pytest.fixture(scope="module")
def adapters(store):
    return {name: provider(name, store) for name in ("llamaindex", "haystack")}


@pytest.mark.parametrize("name", ["llamaindex", "haystack"])
def test_adapter_reads_what_the_direct_path_wrote(store, adapters, name):
    question = "where is the JWT signing key rotated?"
    hits = adapters[name].retrieve("acme", "kb", question, k=2)
    direct = store.retrieve("acme", "kb", question, k=2, mode="vector")
    assert hits[0].document_id == "security.md" and hits[0].section == "Rotation"
    assert hits[0].metadata == {"area": "security"} and "Vault transit" in hits[0].text
    assert [h.chunk_id for h in hits] == [h.chunk_id for h in direct]            # same model, same ranking
    assert hits[0].score == pytest.approx(direct[0].score, abs=1e-4)
    assert adapters[name].retrieve("acme", "kb", question, k=2, filters={"area": "nothing"}) == []
    assert adapters[name].retrieve("globex", "kb", question, k=2) == []


@pytest.mark.parametrize("name, document_id, text, question, section", [
    ("llamaindex", "backups.md", LLAMA_DOC, "how often are database backups taken?", "Backups"),
    ("haystack", "alerts.md", HAYSTACK_DOC, "who gets paged when the error budget burns?", "Alerts"),
])
def test_what_an_adapter_writes_every_path_reads_and_its_delete_really_deletes(store, adapters, name, document_id, text, question, section):
    [result] = adapters[name].ingest("acme", "kb", [DocumentIn(document_id, text, {"area": "ops"})])
    assert result.chunks == 1
    other = adapters["haystack" if name == "llamaindex" else "llamaindex"]
    for reader in (store, other, adapters[name]):
        [hit] = reader.retrieve("acme", "kb", question, k=1, filters={"area": "ops", "document_id": document_id})
        assert (hit.document_id, hit.section, hit.metadata) == (document_id, section, {"area": "ops"}), reader.name
        assert hit.text == text
    # the same chunk embedded by the adapter and by the direct path scores the same
    assert store.retrieve("acme", "kb", question, k=1)[0].document_id == document_id
    before = store.client.count(qdrant_collection("acme", "kb"), exact=True).count
    assert adapters[name].delete("acme", "kb", document_id) == 1
    assert store.client.count(qdrant_collection("acme", "kb"), exact=True).count == before - 1
    assert all(h.document_id != document_id for h in store.retrieve("acme", "kb", question, k=5))
