"""Every audit event shape the gateway produces, through the contract's own SQL in chdb
(components/core/audit/sql, 008_ingest_parse_mv.sql on top; tests/governance/audit_pipeline.py): the
gateway is driven through each decision it makes (allow, 401 per reason, 403, 429, the three fail-closed
503s) and every event it emitted must land in audit.events with nothing in audit.ingest_errors. Then the
Kafka producer: configured as the contract says (acks=all, idempotent, key = tenant); its delivery to a
broker needs one, and none runs here."""
from __future__ import annotations

import asyncio
import json
import os

import pytest

from gateway_fixtures import gateway_settings, running_gateway
from soma_service.audit import KafkaAuditSink, uuid7
from tests.governance.audit_pipeline import Pipeline, as_message


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    pipe = Pipeline(str(tmp_path_factory.mktemp("chdb-gateway")))
    yield pipe
    pipe.close()


def produce_every_decision(settings, identity, fga, redis_server) -> list[dict]:
    def bearer(**claims):
        return {"authorization": f"Bearer {identity.token('k1', **claims)}"}
    traced = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    with running_gateway(settings) as client:
        post = client.post
        post("/v1/workflows/acme-triage/runs", headers={**bearer(sub="bob"), **traced})              # allow
        post("/v1/tools/acme-search/calls", headers=bearer(sub="acme-support", kind="agent"))       # allow, agent
        client.get("/v1/memory/acme-kb/records", headers=bearer(sub="acme-triage", kind="workflow"))  # allow, workflow
        client.put("/v1/agents/acme-support", headers=bearer(sub="acme-ci", kind="service_account"))  # 403, service
        post("/v1/workflows/acme-triage/runs", headers=bearer(sub="gina", tenant="globex"))          # 403
        post("/v1/workflows/acme-triage/runs")                                                      # 401 token_missing
        post("/v1/workflows/acme-triage/runs", headers=bearer(lifetime=-300))                        # 401 token_expired
        post("/v1/workflows/acme-triage/runs", headers=bearer(tenant=None))                          # 401 token_tenant_invalid
        post("/v1/workflows/acme-triage/runs", headers={"authorization": "Bearer " + identity.token("k1", headers={"kid": "nope"})})
        for _ in range(3):
            post("/v1/workflows/acme-triage/runs", headers=bearer(sub="bob", tenant="tight"))        # 2 allow, 429
        fga.stop()
        post("/v1/workflows/acme-triage/runs", headers=bearer(sub="bob"))                            # 503 openfga
        fga.start()
        redis_server.stop()
        post("/v1/workflows/acme-triage/runs", headers=bearer(sub="bob"))                            # 503 redis
        redis_server.start()
        events = list(client.audit.events)
    identity.stop()
    try:
        with running_gateway(settings) as client:
            client.post("/v1/workflows/acme-triage/runs", headers=bearer(sub="bob"))                 # 503 identity
            events += client.audit.events
    finally:
        identity.start()
    return events


def test_every_event_the_gateway_produces_is_accepted_by_the_contract_sql(tmp_path, identity, fga, upstream, redis_server, pipeline):
    settings = gateway_settings(tmp_path, identity, fga, upstream, redis_server,
                                rate_limit_tenants={"tight": {"rate": 0.01, "burst": 2}})
    events = produce_every_decision(settings, identity, fga, redis_server)
    codes = {e["attributes"]["reason.code"] for e in events}
    assert codes == {"allowed", "not_permitted", "token_missing", "token_expired", "token_tenant_invalid", "token_key_unknown",
                     "rate_limited", "authorization_unavailable", "rate_limit_unavailable", "identity_unavailable"}
    assert {e["actor"]["type"] for e in events} == {"user", "agent", "service"}
    pipeline.reset()
    for event in events:
        pipeline.deliver(as_message(event))
    for event in events:
        message = as_message(event)
        assert pipeline.errors_for(message) == [], event
        assert pipeline.accepted(event["event_id"]) == 1, event
    stored = pipeline.rows("SELECT decision, reason, tenant, trace_id FROM audit.events WHERE source = 'gateway' "
                           "AND trace_id = '0af7651916cd43dd8448eb211c80319c'")
    assert stored == [{"decision": "allow", "reason": "", "tenant": "acme", "trace_id": "0af7651916cd43dd8448eb211c80319c"}]


def test_the_contract_sql_would_reject_a_broken_gateway_event(pipeline):
    """The check above can fail: the same SQL refuses an event the gateway must never produce."""
    event = {"event_id": uuid7(), "occurred_at": "2026-11-29T10:00:00.000Z", "actor": {"type": "user", "id": "bob"},
             "tenant": "acme", "action": "workflow.run.start", "resource": {"type": "workflow", "id": "acme-triage"},
             "decision": "deny", "trace_id": "0af7651916cd43dd8448eb211c80319c", "source": "gateway"}   # deny without reason
    pipeline.reset()
    pipeline.deliver(as_message(event))
    assert pipeline.accepted(event["event_id"]) == 0 and pipeline.errors_for(as_message(event))


def test_uuid7_is_the_contracts_lowercase_version_7_form():
    ids = [uuid7() for _ in range(200)]
    assert len(set(ids)) == 200
    for value in ids:
        assert value == value.lower() and value[14] == "7" and value[19] in "89ab" and len(value) == 36


def test_the_kafka_producer_is_configured_as_the_contract_says():
    """Read from the producer aiokafka built (0.14.0, pinned; private attributes): acks=all is -1, an
    idempotent producer has a transaction manager (its producer id and sequence numbers)."""
    async def build():
        sink = KafkaAuditSink("audit-kafka-bootstrap.kafka.svc:9092", client_id="soma-gateway")
        producer = sink.producer
        try:
            return (sink.topic, producer.client._bootstrap_servers, producer._sender._acks, producer._txn_manager is not None,
                    producer._key_serializer("acme"), json.loads(producer._value_serializer({"tenant": "acme"})))
        finally:
            await producer.stop()
    topic, servers, acks, idempotent, key, value = asyncio.run(build())
    assert topic == "platform.audit.v1" and servers == "audit-kafka-bootstrap.kafka.svc:9092"
    assert acks == -1 and idempotent
    assert key == b"acme" and value == {"tenant": "acme"}


@pytest.mark.skipif(not os.environ.get("SOMA_TEST_KAFKA_BOOTSTRAP"),
                    reason="needs a Kafka broker (none runs here): set SOMA_TEST_KAFKA_BOOTSTRAP=host:port to run it")
def test_an_event_reaches_the_broker_keyed_by_tenant():
    from aiokafka import AIOKafkaConsumer

    bootstrap = os.environ["SOMA_TEST_KAFKA_BOOTSTRAP"]
    topic = f"platform.audit.v1.test-{uuid7()[:8]}"

    async def run():
        sink = KafkaAuditSink(bootstrap, topic=topic, client_id="soma-gateway")
        await sink.start()
        event = {"event_id": uuid7(), "tenant": "acme"}
        await sink.emit(event)
        await sink.producer.flush()
        await sink.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
        return event, message
    event, message = asyncio.run(run())
    assert message.key == b"acme" and json.loads(message.value) == event
