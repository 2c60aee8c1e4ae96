"""A promotion record as an audit event in Core's contract (components/core/audit/schema.md).

The log in the repository is the record of truth; the audit pipeline gets the same facts so that the
platform's one audit trail (ClickHouse ``audit.events``) shows releases beside every other decision. The
event is built with the services' own helpers (``soma_service.audit``: uuid7, rfc3339_ms, clean,
actor_of) and sent through their sinks: Kafka when brokers are given, a JSON log line otherwise. Its
``event_id`` is fixed in the signed record, so sending it again is the same event (at-least-once).
"""
from __future__ import annotations

import asyncio
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

_COMMON = Path(__file__).resolve().parents[2] / "apps" / "common" / "src"
if str(_COMMON) not in sys.path:  # the services' shared package, not installed in the tools' environment
    sys.path.insert(0, str(_COMMON))

from soma_service import audit  # noqa: E402

SOURCE = "promotion"


def actor(who: str) -> dict[str, str]:
    """``user:`` / ``service_account:`` principals as the services map them; a bare e-mail is a user."""
    return audit.actor_of(who if ":" in who else f"user:{who}")


def new_event_id() -> str:
    return audit.uuid7()


def event(record: dict[str, Any], record_digest: str) -> dict[str, Any]:
    """The contract's event for a record: action ``release.promote`` or ``release.rollback`` on the stack."""
    when = datetime.fromisoformat(record["when"].replace("Z", "+00:00"))
    attributes = {
        "record.sequence": str(record["sequence"]),
        "record.sha256": record_digest,
        "release.id": record["release"],
        "release.commit": record["commit"],
        "from": record["from"],
        "settings.sha256": record["settings"]["sha256"],
        "gate.result": record["gate"]["result"],
    }
    if record.get("restores"):
        attributes["restores"] = str(record["restores"])
    return {
        "event_id": record["audit_event_id"],
        "occurred_at": audit.rfc3339_ms(when),
        "actor": actor(record["who"]),
        "tenant": audit.PLATFORM_TENANT,
        "action": f"release.{record['kind']}",
        "resource": {"type": "stack", "id": audit.clean(record["to"], 256)},
        "decision": "allow",
        "trace_id": secrets.token_hex(16),
        "source": SOURCE,
        "attributes": {k: audit.clean(v, 1024) for k, v in attributes.items()},
    }


def send(payload: dict[str, Any], kafka_bootstrap: str | None) -> str:
    """Deliver through the services' sink: Kafka (``acks=all``, idempotent, key = tenant) or the log sink; returns
    once the broker acknowledged the event, raises when it did not (``AuditSink.deliver``)."""

    async def deliver() -> None:
        # aiokafka binds its producer to the running loop: made inside it
        sink = audit.KafkaAuditSink(kafka_bootstrap, client_id="soma-promotion") if kafka_bootstrap else audit.LogAuditSink()
        try:
            await sink.start()
            await sink.deliver(payload)
        finally:
            await sink.stop()

    asyncio.run(deliver())
    return f"kafka {kafka_bootstrap} topic {audit.TOPIC}" if kafka_bootstrap else "the log sink (no --audit-kafka given)"
