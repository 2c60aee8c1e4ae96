"""Audit events in Core's contract (components/core/audit/schema.md, topic ``platform.audit.v1``): the
event id, timestamps, text cleaning and the sinks every service shares. Each service builds its own events
(what it decided, on what); none ever carries a token, a header value or a body.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from .tls import trust_only

LOG = logging.getLogger("soma_service.audit")
TOPIC = "platform.audit.v1"
PLATFORM_TENANT = "platform"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ACTOR_TYPES = {"user": "user", "service_account": "service", "agent": "agent", "workflow": "service"}
"""An OpenFGA principal's type -> the audit contract's ``actor.type`` (user | service | agent | system)."""


def actor_of(principal: str) -> dict[str, str]:
    """The contract's ``actor`` for an OpenFGA principal (``workflow:acme-triage`` -> service ``acme-triage``), the
    same in every service, so one workflow's events line up whichever service wrote them."""
    kind, _, subject = principal.partition(":")
    return {"type": ACTOR_TYPES.get(kind, "user"), "id": clean(subject, 256)}


def uuid7() -> str:
    """RFC 9562 UUIDv7 (Python 3.11 has no uuid.uuid7): 48-bit Unix milliseconds, version 7, variant 10."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    hexed = f"{value:032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def rfc3339_ms(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def clean(text: str, limit: int) -> str:
    return _CONTROL.sub(" ", text)[:limit] or "-"


class AuditSink(Protocol):
    """Where a service's events go. ``emit`` is fire-and-forget (a request never waits for the broker);
    ``deliver`` returns only once the event is stored and raises if it is not (a shipper that must not lose a
    line before it moves on)."""

    async def start(self) -> None: ...
    async def emit(self, event: dict) -> None: ...
    async def deliver(self, event: dict) -> None: ...
    async def stop(self) -> None: ...


class LogAuditSink:
    """Events as JSON log lines (a development setting, where no broker exists); never the production sink."""

    async def start(self) -> None:
        return None

    async def emit(self, event: dict) -> None:
        LOG.info(json.dumps(event, separators=(",", ":")))

    async def deliver(self, event: dict) -> None:
        """Logged is as delivered as this sink gets."""
        await self.emit(event)

    async def stop(self) -> None:
        return None


class KafkaAuditSink:
    """The contract's producer: key = tenant (per-tenant order), acks=all, idempotent (aiokafka).

    ``emit`` hands the event to the producer's buffer and returns: the request does not wait for the broker.
    Delivery failures are logged with the event id (the producer retries on its own first); the event_id is
    fixed before the first attempt, so a retry is the same event (the contract's at-least-once).
    ``security`` is aiokafka's connection settings (:func:`scram_over_tls` for Core's listener).
    """

    def __init__(self, bootstrap_servers: str, *, topic: str = TOPIC, client_id: str, **security):
        from aiokafka import AIOKafkaProducer

        self.topic = topic
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers, client_id=client_id, acks="all", enable_idempotence=True,
            key_serializer=lambda key: key.encode(), value_serializer=lambda value: json.dumps(value, separators=(",", ":")).encode(),
            **security)

    async def start(self) -> None:
        await self.producer.start()

    async def emit(self, event: dict) -> None:
        delivery = await self.producer.send(self.topic, value=event, key=event["tenant"])
        delivery.add_done_callback(lambda done: _log_failure(done, event["event_id"]))

    async def deliver(self, event: dict) -> None:
        """Returns once the broker acknowledged the event (acks=all: every in-sync replica has it); raises
        aiokafka's error when it did not, after the producer's own retries."""
        await self.producer.send_and_wait(self.topic, value=event, key=event["tenant"])

    async def stop(self) -> None:
        await self.producer.stop()


def scram_over_tls(username: str, password: str, ca_file: Path) -> dict:
    """aiokafka's settings for Core's listener (TLS on 9093, SCRAM-SHA-512 users, components/core/data/kafka.py).

    TLS trusts only Core's Kafka cluster CA (Strimzi's ``<cluster>-cluster-ca-cert``, ``ca.crt``) and checks the
    broker's name: Strimzi's broker certificates name the bootstrap Service and each broker pod in every DNS form
    (``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc``, ``....svc.cluster.local``; strimzi-kafka-operator
    ClusterCa.generateBrokerCerts), so the bootstrap address Core hands out verifies as it is."""
    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": username,
            "sasl_plain_password": password, "ssl_context": trust_only(ca_file)}


def _log_failure(done, event_id: str) -> None:
    if not done.cancelled() and done.exception() is not None:
        LOG.error("audit event %s not delivered: %s", event_id, done.exception())


class AuditSettings(BaseModel):
    """The audit settings of a service that emits events: mix in before :class:`~soma_service.ServiceSettings`
    (``class XSettings(AuditSettings, ServiceSettings)``). Kafka is the production sink and the default; ``log``
    is for development, where no broker exists.

    The Kafka sink speaks to Core's listener only as Core offers it: TLS verified against the cluster CA
    (``audit_kafka_ca_file``) and a SCRAM-SHA-512 user (``audit_kafka_username``), whose password is a secret
    and so is read only from a file (``SOMA_AUDIT_KAFKA_PASSWORD_FILE`` or ``<secrets_dir>/audit_kafka_password``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    audit_sink: Literal["kafka", "log"] = "kafka"
    audit_kafka_bootstrap: str | None = Field(default=None, validate_default=True,
                                              description="Core's Kafka bootstrap servers, host:port[,host:port]")
    audit_kafka_username: str | None = Field(default=None, validate_default=True,
                                             description="the SCRAM-SHA-512 user (Core's KafkaUser, e.g. audit-producer)")
    audit_kafka_password: SecretStr | None = Field(default=None, validate_default=True,
                                                   description="that user's password, from a file only")
    audit_kafka_ca_file: Path | None = Field(default=None, validate_default=True,
                                             description="PEM file of the Kafka cluster CA the brokers' certificates chain to")
    audit_topic: str = TOPIC

    @field_validator("audit_kafka_bootstrap", "audit_kafka_username", "audit_kafka_password", "audit_kafka_ca_file")
    @classmethod
    def _kafka_when_the_sink_is_kafka(cls, value, info: ValidationInfo):
        if info.data.get("audit_sink", "kafka") == "kafka" and not value:
            raise ValueError(f"required while audit_sink is kafka (the production sink): {_NEEDED[info.field_name]}")
        return value

    @field_validator("audit_kafka_ca_file")
    @classmethod
    def _a_readable_ca_certificate(cls, value: Path | None) -> Path | None:
        if value is not None:
            try:
                trust_only(value)
            except OSError as exc:  # ssl.SSLError is an OSError: unreadable, or no certificate in it
                raise ValueError(f"not a readable PEM CA certificate ({exc.strerror or exc})") from None
        return value

    def audit_sink_for(self, client_id: str) -> AuditSink:
        """The sink these settings choose; ``client_id`` names the service to the broker (e.g. ``soma-tools``)."""
        if self.audit_sink == "kafka":
            security = scram_over_tls(self.audit_kafka_username, self.audit_kafka_password.get_secret_value(), self.audit_kafka_ca_file)
            return KafkaAuditSink(self.audit_kafka_bootstrap, topic=self.audit_topic, client_id=client_id, **security)
        return LogAuditSink()


_NEEDED = {
    "audit_kafka_bootstrap": "Core's bootstrap address, host:port",
    "audit_kafka_username": "the SCRAM-SHA-512 user Core granted",
    "audit_kafka_password": "that user's password as a mounted file (SOMA_AUDIT_KAFKA_PASSWORD_FILE)",
    "audit_kafka_ca_file": "the Kafka cluster CA certificate file (SOMA_AUDIT_KAFKA_CA_FILE)",
}
