"""The audit sinks every service shares (soma_service.audit): what ``deliver`` promises on each sink."""
from __future__ import annotations

import asyncio
import json
import logging
import os

import pytest

from soma_service.audit import KafkaAuditSink, LogAuditSink, uuid7


def test_the_log_sink_delivers_an_event_as_one_json_line(caplog):
    event = {"event_id": uuid7(), "tenant": "acme", "action": "tool.call"}
    with caplog.at_level(logging.INFO, logger="soma_service.audit"):
        asyncio.run(LogAuditSink().deliver(event))
    assert [json.loads(record.getMessage()) for record in caplog.records] == [event]


@pytest.mark.skipif(not os.environ.get("SOMA_TEST_KAFKA_BOOTSTRAP"),
                    reason="needs a Kafka broker (none runs here): set SOMA_TEST_KAFKA_BOOTSTRAP=host:port to run it")
def test_deliver_returns_with_the_event_stored_on_the_broker():
    from aiokafka import AIOKafkaConsumer

    bootstrap = os.environ["SOMA_TEST_KAFKA_BOOTSTRAP"]
    topic = f"platform.audit.v1.test-{uuid7()[:8]}"

    async def run():
        sink = KafkaAuditSink(bootstrap, topic=topic, client_id="soma-test")
        await sink.start()
        event = {"event_id": uuid7(), "tenant": "acme"}
        try:
            await sink.deliver(event)   # no flush: deliver itself waited for the acknowledgement
        finally:
            await sink.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            return event, await asyncio.wait_for(consumer.getone(), 30)
        finally:
            await consumer.stop()
    event, message = asyncio.run(run())
    assert message.key == b"acme" and json.loads(message.value) == event
