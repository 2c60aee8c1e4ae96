"""The audit sinks every service shares (soma_service.audit): what ``deliver`` promises on each sink, and the Kafka
sink's connection to Core's listener (TLS against the cluster CA with the broker's name checked, SCRAM-SHA-512) built
from settings, read back from the producer aiokafka made. Delivery to a broker needs one, and none runs here."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl

import pytest

from soma_service import ServiceSettings, SettingsError
from soma_service.audit import AuditSettings, KafkaAuditSink, LogAuditSink, uuid7
from tests.openbao import issue_server_certificate, make_ca


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


# --- the Kafka sink's connection to Core's listener, built from settings (no broker) ---

BOOTSTRAP = "platform-kafka-bootstrap.soma-data.svc"
"""Core's bootstrap Service as KafkaStore.bootstrap names it (components/core/data/kafka.py), without the port."""


class AuditingSettings(AuditSettings, ServiceSettings):
    pass


class Authority:
    """A CA like Strimzi's cluster CA, and broker certificates it signs, written as PEM files (the throw-away CA and
    serving certificate of tests/openbao.py)."""

    def __init__(self, folder, name: str):
        self.ca = make_ca(name)
        self.ca_file = folder / f"{name}.crt"
        self.ca_file.write_bytes(self.ca.pem)
        self.folder = folder / name

    def broker(self, *dns: str) -> tuple:
        return issue_server_certificate(self.ca, self.folder / f"broker-{len(dns)}-{dns[0]}", dns=dns)


@pytest.fixture(scope="module")
def cluster_ca(tmp_path_factory):
    return Authority(tmp_path_factory.mktemp("kafka-ca"), "cluster-ca")


def kafka_environ(folder, ca_file, **changes) -> dict:
    (folder / "audit_kafka_password").write_text("scram-password-from-vault\n")
    env = {"SOMA_SERVICE_NAME": "gateway", "SOMA_SECRETS_DIR": str(folder), "SOMA_AUDIT_SINK": "kafka",
           "SOMA_AUDIT_KAFKA_BOOTSTRAP": f"{BOOTSTRAP}:9093", "SOMA_AUDIT_KAFKA_USERNAME": "audit-producer",
           "SOMA_AUDIT_KAFKA_CA_FILE": str(ca_file)}
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def handshake(context: ssl.SSLContext, cert_file, key_file, server_name: str) -> None:
    """A TLS handshake in memory between ``context`` (the client) and a server presenting ``cert_file``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(c_in, c_out, server_hostname=server_name)
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, tls, out, peer_in in (("client", client, c_out, s_in), ("server", server, s_out, c_in)):
            if not done[side]:
                try:
                    tls.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_the_kafka_sink_speaks_scram_sha_512_over_tls_as_the_settings_say(tmp_path, cluster_ca):
    """Read from the producer aiokafka built (0.14.0, pinned; private attributes of its client)."""
    settings = AuditingSettings.from_env(kafka_environ(tmp_path, cluster_ca.ca_file))

    async def build():
        sink = settings.audit_sink_for("soma-gateway")
        client = sink.producer.client
        try:
            return (client._bootstrap_servers, client._security_protocol, client._sasl_mechanism, client._sasl_plain_username,
                    client._sasl_plain_password, client._ssl_context)
        finally:
            await sink.producer.stop()
    servers, protocol, mechanism, username, password, context = asyncio.run(build())
    assert servers == f"{BOOTSTRAP}:9093" and protocol == "SASL_SSL" and mechanism == "SCRAM-SHA-512"
    assert username == "audit-producer" and password == "scram-password-from-vault"   # the file's, newline stripped
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [dict(entry[0] for entry in ca["subject"])["commonName"] for ca in context.get_ca_certs()] == ["cluster-ca"]
    # a broker certificate of the cluster CA naming the bootstrap Service (as Strimzi's do) verifies ...
    handshake(context, *cluster_ca.broker(BOOTSTRAP, "platform-kafka-brokers.soma-data.svc"), BOOTSTRAP)
    # ... one for another name does not, nor one from another CA
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(context, *cluster_ca.broker("elsewhere.soma-data.svc"), BOOTSTRAP)
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        handshake(context, *Authority(tmp_path, "other-ca").broker(BOOTSTRAP), BOOTSTRAP)


def test_the_kafka_sink_without_its_credentials_is_refused_naming_each(tmp_path):
    with pytest.raises(SettingsError) as refused:
        AuditingSettings.from_env({"SOMA_SERVICE_NAME": "gateway", "SOMA_SECRETS_DIR": str(tmp_path),
                                   "SOMA_AUDIT_KAFKA_BOOTSTRAP": f"{BOOTSTRAP}:9093"})
    text = "\n".join(refused.value.problems)
    assert "SOMA_AUDIT_KAFKA_USERNAME (not set): Value error, required while audit_sink is kafka" in text
    assert f"secret file {tmp_path / 'audit_kafka_password'}: Value error, required while audit_sink is kafka" in text
    assert "SOMA_AUDIT_KAFKA_CA_FILE (not set): Value error, required while audit_sink is kafka" in text
    assert "SOMA_AUDIT_KAFKA_BOOTSTRAP" not in text
    # the log sink needs none of them
    assert AuditingSettings.from_env({"SOMA_SERVICE_NAME": "gateway", "SOMA_SECRETS_DIR": str(tmp_path),
                                      "SOMA_AUDIT_SINK": "log"}).audit_sink_for("soma-gateway").__class__ is LogAuditSink


def test_the_kafka_password_as_a_value_and_a_ca_file_without_a_certificate_are_refused(tmp_path, cluster_ca):
    not_a_ca = tmp_path / "ca.crt"
    not_a_ca.write_text("stand-in, no certificate here\n")
    with pytest.raises(SettingsError) as refused:
        AuditingSettings.from_env(kafka_environ(tmp_path, not_a_ca, SOMA_AUDIT_KAFKA_PASSWORD="hunter2-in-env"))
    text = "\n".join(refused.value.problems)
    assert "SOMA_AUDIT_KAFKA_PASSWORD: audit_kafka_password is a secret and is never read from an environment variable" in text
    assert "hunter2-in-env" not in text
    assert f"SOMA_AUDIT_KAFKA_CA_FILE: Value error, not a readable PEM CA certificate" in text and str(not_a_ca) in text
    with pytest.raises(SettingsError, match="SOMA_AUDIT_KAFKA_CA_FILE: Value error, not a readable PEM CA certificate .*missing.crt"):
        AuditingSettings.from_env(kafka_environ(tmp_path, tmp_path / "missing.crt"))
