"""The promotion's audit event is delivered, not merely handed to a buffer (tools/ops/audit_event.send)."""
from __future__ import annotations

import json
import logging

import pytest

from tests.local_servers import free_port
from tools.ops import audit_event


def test_an_event_no_broker_acknowledged_is_an_error_never_a_success():
    """Where no broker listens ``send`` raises aiokafka's error, which the command turns into the warning that says how
    to resend (``_emit``); it never reports an unsent event as sent."""
    from aiokafka.errors import KafkaConnectionError

    with pytest.raises(KafkaConnectionError):
        audit_event.send({"event_id": "0", "tenant": "platform"}, f"127.0.0.1:{free_port()}")


def test_without_a_broker_the_event_is_a_log_line(caplog):
    caplog.set_level(logging.INFO, logger="soma_service.audit")
    assert audit_event.send({"event_id": "1", "tenant": "platform"}, None) == "the log sink (no --audit-kafka given)"
    assert json.loads(caplog.records[-1].getMessage()) == {"event_id": "1", "tenant": "platform"}
