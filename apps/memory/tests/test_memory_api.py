"""The memory gateway's HTTP API with OpenFGA (stand-in over TCP) and the hashing embedder (the subject here
is the door, not retrieval quality): who may read and write, what is refused and recorded, and that nothing
is written when a check fails or OpenFGA is down. Every event goes through the audit contract's own SQL."""
from __future__ import annotations

import pytest
from qdrant_client import QdrantClient

from memory_fixtures import ACME, GLOBEX, READER, memory_settings, running_memory
from soma_memory.embeddings import HashingEmbedder
from soma_memory.naming import qdrant_collection
from soma_memory.settings import MemorySettings
from soma_service import SettingsError

DOC = {"document_id": "policy.md", "text": "# Leave\n\nVacation is 25 days.\n\n# Travel\n\nBook trains below 600 km.",
       "metadata": {"owner": "hr"}}


@pytest.fixture()
def client(tmp_path, fga):
    qdrant = QdrantClient(":memory:")
    with running_memory(memory_settings(tmp_path, fga.url, chunk_size=200, chunk_overlap=20), qdrant, HashingEmbedder()) as client:
        client.qdrant = qdrant
        yield client


def test_writer_ingests_searches_lists_and_deletes_with_each_write_audited(client):
    written = client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=ACME)
    assert written.status_code == 201, written.text
    assert written.json()["documents"] == [{"document_id": "policy.md", "chunks": 2, "replaced": 0}]
    found = client.get("/collections/acme-kb/records", params={"query": "vacation days", "k": 1}, headers=READER).json()
    assert [(h["document_id"], h["section"], h["metadata"]) for h in found["hits"]] == [("policy.md", "Leave", {"owner": "hr"})]
    for name in ("llamaindex", "haystack"):
        other = client.get("/collections/acme-kb/records", params={"query": "vacation days", "k": 1, "provider": name}, headers=READER)
        assert other.json()["hits"][0]["chunk_id"] == found["hits"][0]["chunk_id"], name
    listed = client.get("/collections/acme-kb/records", params={"filter": "owner:hr", "limit": 1}, headers=READER).json()
    assert len(listed["records"]) == 1 and listed["next"]
    assert client.get("/collections/acme-kb/records", params={"filter": "owner:it"}, headers=READER).json()["records"] == []
    gone = client.delete("/collections/acme-kb/records/policy.md", headers=ACME)
    assert gone.json() == {"collection": "acme-kb", "document_id": "policy.md", "deleted_chunks": 2}
    assert client.qdrant.count(qdrant_collection("acme", "acme-kb"), exact=True).count == 0
    assert client.delete("/collections/acme-kb/records/policy.md", headers=ACME).json()["error"]["code"] == "document_not_found"
    events = [(e["action"], e["decision"], e["actor"]["id"], e["tenant"]) for e in client.audit.events]
    assert events == [("memory.write", "allow", "acme-support", "acme"), ("memory.delete", "allow", "acme-support", "acme"),
                      ("memory.delete", "allow", "acme-support", "acme")]
    assert all(DOC["text"] not in str(e) and "vacation" not in str(e).lower() for e in client.audit.events)


def test_a_denied_caller_gets_403_the_denial_is_audited_and_nothing_changes(client):
    assert client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=ACME).status_code == 201
    refused = client.post("/collections/acme-kb/records", json={"documents": [{**DOC, "document_id": "x"}]}, headers=READER)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_permitted"
    assert client.delete("/collections/acme-kb/records/policy.md", headers=READER).status_code == 403
    assert client.delete("/collections/acme-kb", headers=READER).status_code == 403
    # globex's workflow holds a (cross-tenant, never honoured) grant on acme-kb: OpenFGA says no
    assert client.get("/collections/acme-kb/records", params={"query": "vacation"}, headers=GLOBEX).status_code == 403
    assert client.qdrant.count(qdrant_collection("acme", "acme-kb"), exact=True).count == 2
    denials = [e for e in client.audit.events if e["decision"] == "deny"]
    assert [(e["action"], e["actor"]["type"], e["tenant"]) for e in denials] == [
        ("memory.write", "service", "acme"), ("memory.delete", "service", "acme"),
        ("memory.collection.delete", "service", "acme"), ("memory.read", "service", "globex")]
    assert all(e["reason"].startswith("not_permitted: ") and e["resource"] == {"type": "memory_collection", "id": "acme-kb"}
               for e in denials)


def test_openfga_down_or_failing_refuses_everything_and_writes_nothing(client, fga):
    fga.stop()
    try:
        down = client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=ACME)
        assert down.status_code == 503 and down.json()["error"]["code"] == "authorization_unavailable"
        assert client.get("/collections/acme-kb/records", params={"query": "x"}, headers=ACME).status_code == 503
    finally:
        fga.start()
    fga.fail_with = 500
    try:
        assert client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=ACME).status_code == 503
    finally:
        fga.fail_with = None
    assert not client.qdrant.collection_exists(qdrant_collection("acme", "acme-kb"))
    assert [e["attributes"]["reason.code"] for e in client.audit.events] == ["authorization_unavailable"] * 3


def test_an_unrecorded_write_is_not_made(client):
    client.audit.broken = True
    refused = client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=ACME)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "audit_unavailable"
    assert not client.qdrant.collection_exists(qdrant_collection("acme", "acme-kb"))


def test_tenants_stay_apart_even_when_authorization_allows_both(client):
    """Both tenants are (by this test's OpenFGA table) allowed on a collection id ``shared-name``: the data
    still lives in two Qdrant collections and neither tenant reads, lists or deletes the other's."""
    assert client.post("/collections/shared-name/records", json={"documents": [DOC]}, headers=ACME).status_code == 201
    assert client.get("/collections/shared-name/records", params={"query": "vacation"}, headers=GLOBEX).json()["hits"] == []
    assert client.get("/collections/shared-name/records", headers=GLOBEX).json()["records"] == []
    assert client.delete("/collections/shared-name/records/policy.md", headers=GLOBEX).status_code == 404
    assert client.qdrant.count(qdrant_collection("acme", "shared-name"), exact=True).count == 2


@pytest.mark.parametrize("headers, code", [({}, 401), ({"x-soma-tenant": "acme"}, 401),
                                           ({"x-soma-tenant": "ACME!", "x-soma-principal": "user:bob"}, 401),
                                           ({"x-soma-tenant": "acme", "x-soma-principal": "bob"}, 401)])
def test_requests_without_a_verified_caller_are_refused(client, headers, code):
    answer = client.get("/collections/acme-kb/records", headers=headers)
    assert answer.status_code == code and answer.json()["error"]["code"] == "caller_unidentified"


@pytest.mark.parametrize("body, message", [
    ({"documents": []}, "body.documents"),
    ({"documents": [{**DOC, "metadata": {"tenant": "globex"}}]}, "documents[0].metadata.tenant: reserved"),
    ({"documents": [{**DOC, "metadata": {"nested": {"a": 1}}}]}, "body.documents[0].metadata.nested"),
    ({"documents": [{**DOC, "document_id": "../x"}]}, "body.documents[0].document_id"),
    ({"documents": [DOC], "provider": "pinecone"}, "body.provider"),
])
def test_bad_bodies_name_what_is_wrong_and_write_nothing(client, body, message):
    answer = client.post("/collections/acme-kb/records", json=body, headers=ACME)
    assert answer.status_code == 400 and message in answer.json()["error"]["message"], answer.text
    assert not client.qdrant.collection_exists(qdrant_collection("acme", "acme-kb"))


def test_every_event_is_accepted_by_the_audit_contract_sql(client, tmp_path_factory):
    pytest.importorskip("chdb")
    from tests.governance.audit_pipeline import Pipeline, as_message

    client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=ACME)
    client.delete("/collections/acme-kb/records/policy.md", headers=ACME)
    client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=READER)
    client.get("/collections/acme-kb/records", headers=GLOBEX)
    assert len(client.audit.events) == 4
    pipeline = Pipeline(str(tmp_path_factory.mktemp("chdb-memory")))
    try:
        for event in client.audit.events:
            pipeline.deliver(as_message(event))
        for event in client.audit.events:
            assert pipeline.errors_for(as_message(event)) == [], event
            assert pipeline.accepted(event["event_id"]) == 1, event
    finally:
        pipeline.close()


def test_settings_report_every_problem_at_once(tmp_path):
    with pytest.raises(SettingsError) as raised:
        MemorySettings.from_env({"SOMA_OPENFGA_API_URL": "openfga:8080", "SOMA_CHUNK_SIZE": "200", "SOMA_CHUNK_OVERLAP": "300",
                                 "SOMA_SECRETS_DIR": str(tmp_path), "SOMA_QDRANT_APIKEY": "x", "SOMA_AUDIT_SINK": "log"})
    text = "\n".join(raised.value.problems)
    for expected in ("SOMA_OPENFGA_API_URL", "openfga_store_id", "SOMA_QDRANT_APIKEY: no such setting"):
        assert expected in text
    with pytest.raises(SettingsError, match="exactly one of SOMA_QDRANT_URL"):
        (tmp_path / "openfga_store_id").write_text("01JH6Q8ZK3P5R7T9V2X4Y6A8C0")
        (tmp_path / "openfga_model_id").write_text("01JH6Q9B1D3F5H7K9M2N4P6R8S")
        MemorySettings.from_env({"SOMA_OPENFGA_API_URL": "http://openfga:8080", "SOMA_SECRETS_DIR": str(tmp_path), "SOMA_AUDIT_SINK": "log"})


def test_dropping_a_collection_removes_it_from_qdrant(client):
    client.post("/collections/acme-kb/records", json={"documents": [DOC]}, headers=ACME)
    assert client.delete("/collections/acme-kb", headers=ACME).json() == {"collection": "acme-kb", "deleted": True}
    assert not client.qdrant.collection_exists(qdrant_collection("acme", "acme-kb"))
    assert client.get("/collections/acme-kb/records", params={"query": "vacation"}, headers=READER).json()["hits"] == []
    assert client.delete("/collections/acme-kb", headers=ACME).status_code == 404
    assert [e["action"] for e in client.audit.events] == ["memory.write", "memory.collection.delete", "memory.collection.delete"]


def test_the_openapi_document_lists_the_routes_the_gateway_forwards_to():
    from soma_memory.openapi import document

    paths = document()["paths"]
    assert set(paths["/collections/{collection_id}/records"]) == {"get", "post"}
    assert set(paths["/collections/{collection_id}/records/{document_id}"]) == {"delete"}
    assert set(paths["/collections/{collection_id}"]) == {"delete"}
