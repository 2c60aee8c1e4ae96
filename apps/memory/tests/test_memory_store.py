"""The direct path with the real model: the right chunk is found, metadata filters narrow, tenants never
meet, and a deleted document is gone from Qdrant (by search and by counting points)."""
from __future__ import annotations

import pytest
from qdrant_client import QdrantClient

from soma_memory.chunking import chunk_document, split
from soma_memory.model import DocumentIn, InvalidInput
from soma_memory.naming import NameError_, qdrant_collection
from soma_memory.store import ChunkRule, MemoryStore

HANDBOOK = """# Handbook

## Vacation
Employees get 25 days of paid vacation per year. Unused days carry over until March.

## Expenses
Travel expenses are reimbursed within 30 days when the receipt is uploaded to the finance portal.

## Security
Laptops must use full-disk encryption. Report a lost device to the security desk within one hour.
"""
RUNBOOK = """# Database failover

When the primary PostgreSQL instance fails, CloudNativePG promotes a replica automatically.
Check the cluster status with kubectl cnpg status before restarting applications.
"""


@pytest.fixture(scope="module")
def store(minilm):
    store = MemoryStore(QdrantClient(":memory:"), minilm, ChunkRule(size=200, overlap=40))
    store.ingest("acme", "kb", [DocumentIn("handbook.md", HANDBOOK, {"team": "hr"}),
                                DocumentIn("failover.md", RUNBOOK, {"team": "sre"})])
    return store


@pytest.mark.parametrize("mode", ["vector", "hybrid"])
def test_a_question_finds_the_chunk_that_answers_it(store, mode):
    hits = store.retrieve("acme", "kb", "how many days off do I get each year?", k=2, mode=mode)
    assert hits[0].document_id == "handbook.md"
    assert hits[0].section == "Handbook > Vacation" and "25 days" in hits[0].text
    lost = store.retrieve("acme", "kb", "what do I do when my notebook computer is stolen?", k=1, mode=mode)[0]
    assert lost.section == "Handbook > Security"


def test_metadata_filter_keeps_only_matching_chunks(store):
    hits = store.retrieve("acme", "kb", "how many days off do I get each year?", k=5, filters={"team": "sre"})
    assert hits and {h.document_id for h in hits} == {"failover.md"}
    assert {h.metadata["team"] for h in store.retrieve("acme", "kb", "database", k=5, filters={"team": "hr"})} == {"hr"}
    assert store.retrieve("acme", "kb", "database", k=5, filters={"team": "nobody"}) == []
    with pytest.raises(InvalidInput, match="tenant"):
        store.retrieve("acme", "kb", "database", filters={"tenant": "globex"})


def test_another_tenant_sees_nothing_even_with_the_same_or_a_guessed_collection_name(store):
    assert store.retrieve("globex", "kb", "vacation days", k=5) == []
    assert store.count("globex", "kb") == 0
    # a collection id that spells acme's Qdrant name still lands in globex's own namespace
    assert qdrant_collection("globex", "acme__kb") == "t_globex__acme__kb" != qdrant_collection("acme", "kb")
    assert store.retrieve("globex", "acme__kb", "vacation days", k=5) == []
    store.ingest("globex", "kb", [DocumentIn("handbook.md", "# Globex\n\nVacation is 10 days at Globex.")])
    assert {h.text for h in store.retrieve("globex", "kb", "vacation days", k=5)} == {"# Globex\n\nVacation is 10 days at Globex."}
    assert all("Globex" not in h.text for h in store.retrieve("acme", "kb", "vacation days at Globex", k=10))
    for bad in ("../acme", "t_acme__kb/x", "", "a" * 200):
        with pytest.raises(NameError_):
            store.retrieve("globex", bad, "x")
    with pytest.raises(NameError_):
        store.ingest("Acme_", "kb", [DocumentIn("x", "y")])


def test_delete_removes_every_chunk_from_qdrant(minilm):
    store = MemoryStore(QdrantClient(":memory:"), minilm, ChunkRule(size=120, overlap=20))
    [first] = store.ingest("acme", "kb", [DocumentIn("handbook.md", HANDBOOK)])
    store.ingest("acme", "kb", [DocumentIn("failover.md", RUNBOOK)])
    name = qdrant_collection("acme", "kb")
    assert first.chunks > 3
    total = store.client.count(name, exact=True).count
    assert store.delete("acme", "kb", "handbook.md") == first.chunks
    assert store.client.count(name, exact=True).count == total - first.chunks   # points gone, not flagged
    hits = store.retrieve("acme", "kb", "how many vacation days per year?", k=10)
    assert hits and all(h.document_id == "failover.md" for h in hits)
    assert store.delete("acme", "kb", "handbook.md") == 0
    # another tenant cannot delete acme's document by naming it
    assert store.delete("globex", "kb", "failover.md") == 0 and store.count("acme", "kb") == total - first.chunks


def test_reingesting_a_document_replaces_its_chunks(minilm):
    store = MemoryStore(QdrantClient(":memory:"), minilm, ChunkRule(size=120, overlap=20))
    store.ingest("acme", "kb", [DocumentIn("handbook.md", HANDBOOK)])
    [again] = store.ingest("acme", "kb", [DocumentIn("handbook.md", "# Handbook\n\nVacation is 30 days now.")])
    assert again.replaced > 1 and again.chunks == 1 and store.count("acme", "kb") == 1


def test_bad_documents_are_refused_before_anything_is_written():
    from soma_memory.embeddings import HashingEmbedder

    store = MemoryStore(QdrantClient(":memory:"), HashingEmbedder())
    with pytest.raises(InvalidInput, match=r"documents\[1\].metadata.chunk_id: reserved"):
        store.ingest("acme", "kb", [DocumentIn("ok", "text"), DocumentIn("bad", "text", {"chunk_id": "x"})])
    with pytest.raises(InvalidInput, match=r"documents\[0\].text"):
        store.ingest("acme", "kb", [DocumentIn("empty", "   ")])
    assert store.count("acme", "kb") == 0


def test_chunks_respect_size_overlap_and_sections():
    text = "# A\n\n" + " ".join(f"word{i}" for i in range(300)) + "\n\n## B\n\n```\n# not a heading\n```\ntail"
    chunks = chunk_document(text, 200, 50)
    assert all(len(c.text) <= 200 for c in chunks)
    assert {c.section for c in chunks} == {"A", "A > B"}
    first, second = chunks[0].text, chunks[1].text
    assert first.split()[-1] in second and not second.startswith("ord")   # overlap starts on a word
    with pytest.raises(ValueError, match="overlap"):
        split("x", 100, 100)
