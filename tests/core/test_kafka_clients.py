"""Core's Kafka producer access (components/core/data/kafka_clients.py) under the mock runtime, with Core's secret
grants stood in by a recorder of the SecretGrants interface: what one consumer gets, what a namespace shares, and
what is refused. The whole path through the program (real grants, Strimzi's Kafka, the Agents services) is rendered
in tests/test_agents_services.py."""
from __future__ import annotations

from types import SimpleNamespace

import pulumi
import pytest

from components import catalog, settings
from components.core import telemetry_for
from components.core.data.common import ClientNamespaces, StoreContext
from components.core.data.kafka_clients import KafkaClients
from components.core.interfaces import SecretRef
from components.kit import KitContext
from tests.helpers import objects
from tools import mock_runtime
from tools.render import build_plan, stack_config


BROKERS = {"strimzi.io/cluster": "platform", "strimzi.io/name": "platform-kafka"}


class RecordedGrants:
    """SecretGrants that remember what was granted (the real one writes Vault and External Secrets objects)."""

    def __init__(self):
        self.grants: list[tuple] = []

    def password(self, name: str, length: int = 32) -> str:
        return f"generated:{name}"

    def grant(self, service, namespace, service_account, secret, values, *, create_service_account=False, after=()):
        self.grants.append((service, namespace, service_account, secret, dict(values), create_service_account))
        return SecretRef(name=f"{service}-{secret}", namespace=namespace, keys=tuple(sorted(values)))


def run(calls):
    """Build KafkaClients for the dev stack and hand it to ``calls``; return the plan, the grants, the flows and
    what ``calls`` returned."""
    parsed = settings.parse(stack_config("dev"), "dev")
    ctx = KitContext.from_settings(parsed, catalog.load(), telemetry_for(parsed.core))
    grants = RecordedGrants()
    stores = StoreContext(settings=parsed.core, ctx=ctx, secrets=grants, clients=ClientNamespaces.of(parsed))
    out = {}

    def program():
        cluster = pulumi.CustomResource("test:index:KafkaCluster", "platform")  # Strimzi's Kafka stands in here
        kafka = SimpleNamespace(bootstrap="platform-kafka-bootstrap.soma-data.svc:9093", cluster=cluster)
        out["result"] = calls(KafkaClients(stores, kafka, pulumi.ResourceOptions()))

    plan = build_plan("dev", mock_runtime.run(program, "dev", {}), {})
    return plan, grants.grants, ctx.flows.entries, out.get("result")


@pytest.fixture(scope="module")
def two_producers():
    return run(lambda clients: [clients.producer("gateway", "soma-agents"), clients.producer("tools", "soma-agents")])


def test_a_producer_gets_the_kafka_users_password_the_ca_and_where_to_connect(two_producers):
    _, grants, _, (gateway, tools) = two_producers
    assert grants == [("gateway", "soma-agents", "gateway-secrets", "kafka", {"password": "generated:kafka-audit-producer"}, True),
                      ("tools", "soma-agents", "tools-secrets", "kafka", {"password": "generated:kafka-audit-producer"}, True)]
    assert (gateway.bootstrap, gateway.topic, gateway.username, gateway.port) == \
        ("platform-kafka-bootstrap.soma-data.svc:9093", "platform.audit.v1", "audit-producer", 9093)
    assert gateway.password == SecretRef("gateway-kafka", "soma-agents", ("password",))
    assert gateway.ca == tools.ca == SecretRef("kafka-cluster-ca", "soma-agents", ("ca.crt",))
    assert gateway.peer.namespace == "soma-data" and gateway.peer.pods == BROKERS
    assert gateway.client_labels == {"somaagenthub.io/kafka-client": "true"}


def test_a_namespace_gets_one_ca_copy_and_each_producer_its_own_flow(two_producers):
    plan, _, flows, _ = two_producers
    kinds = [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects(plan)]
    assert sorted(k for k in kinds if k[0] != "NetworkPolicy") == [
        ("ExternalSecret", "soma-agents", "kafka-cluster-ca"), ("Role", "soma-data", "kafka-cluster-ca-reader-soma-agents"),
        ("RoleBinding", "soma-data", "kafka-cluster-ca-reader-soma-agents"), ("SecretStore", "soma-agents", "kafka-cluster-ca"),
        ("ServiceAccount", "soma-agents", "kafka-cluster-ca-reader")]
    recorded = [(namespace, flow.name, flow.direction) for namespace, flow in flows]
    assert recorded == [("soma-data", "kafka-from-soma-agents-gateway", "Ingress"),
                        ("soma-data", "kafka-from-soma-agents-tools", "Ingress")]
    (copy,) = objects(plan, "ExternalSecret")
    waits = next(r for r in plan["resources"] if r["inputs"].get("metadata", {}).get("name") == "kafka-cluster-ca"
                 and r["type"].endswith("ExternalSecret"))["dependencies"]
    assert any(d.endswith("KafkaCluster::platform") for d in waits), "the copy waits for the Kafka cluster that makes the CA"
    assert copy["spec"]["data"] == [{"secretKey": "ca.crt", "remoteRef": {"key": "platform-cluster-ca-cert", "property": "ca.crt"}}]


def test_a_namespace_the_listener_does_not_admit_and_a_second_ask_are_refused():
    def ops(clients):
        with pytest.raises(ValueError, match="kafka producer soma-ops/k6: the listener admits clients from "
                                             "soma-data, soma-governance, soma-agents only"):
            clients.producer("k6", "soma-ops")
        clients.producer("gateway", "soma-agents")
        with pytest.raises(ValueError, match="kafka producer soma-agents/gateway: asked for twice"):
            clients.producer("gateway", "soma-agents")
        return "checked"
    plan, grants, flows, result = run(ops)
    assert result == "checked" and [g[:2] for g in grants] == [("gateway", "soma-agents")] and len(flows) == 1
