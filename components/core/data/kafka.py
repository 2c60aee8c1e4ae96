"""Kafka through Strimzi: KRaft node pools, a TLS listener with SCRAM users, ACLs per user, topics.

Every KafkaUser's password is generated, stored in Vault and handed to Strimzi as an
ESO-managed Secret (``authentication.password.valueFrom``); Strimzi never generates one.
Images: the broker and entity-operator images are set on the Kafka resource, the operator's
own through the chart (``strimzi.image`` in the chart's _helpers.tpl joins
registry/repository/name and prefers ``digest``). Kafka Connect, Bridge, MirrorMaker and Cruise
Control are not deployed, so their chart image defaults are never used.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.core.data.common import API_SERVER_PORTS, StoreContext, client_peer
from components.kit.security import anti_affinity, container_security_context, pod_security_context, resource_requirements
from components.kit import Peer, allow_egress, allow_ingress, custom_resource, helm_chart, pod_monitor, recommended
from components.settings import Resources

API = "kafka.strimzi.io/v1"
CLUSTER = "platform"
TLS_PORT = 9093
INTERNAL_PORTS = (9090, 9091, 9092, TLS_PORT)
AUDIT_TOPIC = "platform.audit.v1"
CLICKHOUSE_GROUP = "clickhouse-audit"
CLICKHOUSE_USER = "clickhouse-audit"
AUDIT_PRODUCER = "audit-producer"
"""The KafkaUser that may write the audit topic and nothing else; later phases' services produce as it."""
CA_SECRET = f"{CLUSTER}-cluster-ca-cert"
"""Strimzi's public cluster CA (``ca.crt``; the key is in ``<cluster>-cluster-ca``): what the brokers' certificates chain to."""
OPERATOR_LABELS = {"name": "strimzi-cluster-operator"}
KAFKA_LABELS = {"strimzi.io/cluster": CLUSTER}
ENTITY_LABELS = {"strimzi.io/name": f"{CLUSTER}-entity-operator"}
USERS_SERVICE = "kafka-users"
METRICS_PORT = 9404
METRICS_PORT_NAME = "tcp-prometheus"
"""Strimzi's name for the Prometheus port of broker and Kafka Exporter pods (strimzi-kafka-operator
packaging/examples/metrics/prometheus-install/pod-monitors/kafka-resources-metrics.yaml)."""
METRICS_CONFIG_MAP = f"{CLUSTER}-kafka-metrics"
METRICS_CONFIG_KEY = "kafka-metrics-config.yml"
BROKER_LABELS = {**KAFKA_LABELS, "strimzi.io/name": f"{CLUSTER}-kafka"}
STRIMZI_UID = 1001
"""The non-root user Strimzi's operator and Kafka images run as."""
POD_SECURITY = pod_security_context(STRIMZI_UID)
CONTAINER_SECURITY = container_security_context(uid=STRIMZI_UID)
"""Strimzi mounts its own writable /tmp (strimzi-tmp) in every pod it generates, so a read-only
root filesystem holds; set explicitly on every template, since the policy pack cannot see an
operator's defaults and a KafkaNodePool does not inherit the Kafka resource's template."""
EXPORTER_LABELS = {**KAFKA_LABELS, "strimzi.io/name": f"{CLUSTER}-kafka-exporter"}
EXPORTER_RESOURCES = Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi")
SCRAPE = {"port": METRICS_PORT_NAME, "path": "/metrics", "interval": "30s"}
BROKER_MONITOR = "kafka-brokers"
EXPORTER_MONITOR = "kafka-exporter"
"""The PodMonitors of the brokers (JMX exporter) and of the Kafka Exporter: their jobs are ``<namespace>/<name>``."""

# JMX Prometheus Exporter rules for the brokers: the generic gauge and counter rules of Strimzi's
# packaging/examples/metrics/kafka-metrics.yaml (percent gauges, per-second counters, values with
# up to two key/value pairs, KRaft raft metrics); RequestMetrics is left out as upstream does.
JMX_EXPORTER_RULES = """lowercaseOutputName: true
rules:
- pattern: kafka.(\\w+)<type=(.+), name=(.+)Percent\\w*><>MeanRate
  name: kafka_$1_$2_$3_percent
  type: GAUGE
- pattern: kafka.(\\w+)<type=(.+), name=(.+)Percent\\w*><>Value
  name: kafka_$1_$2_$3_percent
  type: GAUGE
- pattern: kafka.(\\w+)<type=(?!RequestMetrics)(.+), name=(.+)PerSec\\w*, (.+)=(.+)><>Count
  name: kafka_$1_$2_$3_total
  type: COUNTER
  labels:
    "$4": "$5"
- pattern: kafka.(\\w+)<type=(?!RequestMetrics)(.+), name=(.+)PerSec\\w*><>Count
  name: kafka_$1_$2_$3_total
  type: COUNTER
- pattern: kafka.(\\w+)<type=(.+), name=(.+), (.+)=(.+), (.+)=(.+)><>Value
  name: kafka_$1_$2_$3
  type: GAUGE
  labels:
    "$4": "$5"
    "$6": "$7"
- pattern: kafka.(\\w+)<type=(.+), name=(.+), (.+)=(.+)><>Value
  name: kafka_$1_$2_$3
  type: GAUGE
  labels:
    "$4": "$5"
- pattern: kafka.(\\w+)<type=(.+), name=(.+)><>Value
  name: kafka_$1_$2_$3
  type: GAUGE
- pattern: "kafka.server<type=raft-metrics><>(.+-total|.+-max):"
  name: kafka_server_raftmetrics_$1
  type: COUNTER
- pattern: "kafka.server<type=raft-metrics><>(.+):"
  name: kafka_server_raftmetrics_$1
  type: GAUGE
"""


@dataclass(frozen=True)
class KafkaUserSpec:
    """A Kafka principal and what it may do: producers write, consumers read with their group."""

    name: str
    topic: str
    produce: bool
    group: str = ""

    def acls(self) -> list[dict]:
        topic = {"type": "topic", "name": self.topic, "patternType": "literal"}
        if self.produce:
            return [{"resource": topic, "operations": ["Write", "Describe"], "type": "allow"}]
        return [
            {"resource": topic, "operations": ["Read", "Describe"], "type": "allow"},
            {"resource": {"type": "group", "name": self.group, "patternType": "literal"}, "operations": ["Read"], "type": "allow"},
        ]


USERS = (
    KafkaUserSpec(AUDIT_PRODUCER, AUDIT_TOPIC, produce=True),
    KafkaUserSpec(CLICKHOUSE_USER, AUDIT_TOPIC, produce=False, group=CLICKHOUSE_GROUP),
)


def password_name(user: str) -> str:
    """The generated credential (``SecretGrants.password``) of a KafkaUser: its clients copy the same value."""
    return f"kafka-{user}"


def node_storage(size: str, storage_class: str) -> dict:
    """One persistent volume per node that also holds the KRaft metadata log.

    Dedicated controllers get ``core.kafka.controllerStorage`` (metadata only), brokers
    ``core.kafka.storage``: giving controllers the brokers' size would claim volumes they never fill.
    """
    return {
        "type": "jbod",
        "volumes": [{"id": 0, "type": "persistent-claim", "size": size, "class": storage_class, "deleteClaim": False, "kraftMetadata": "shared"}],
    }


def kafka_version(tag: str) -> str:
    """``1.2.0-kafka-4.3.1`` -> ``4.3.1``: the broker version follows the pinned image."""
    return tag.rsplit("-kafka-", 1)[1]


def operator_values(stores: StoreContext) -> dict:
    image = stores.ctx.catalog.image("strimzi-operator")
    pinned = {"registry": image.registry, "repository": image.repository, "name": "", "tag": image.tag, "digest": image.digest}
    broker = stores.ctx.catalog.image("strimzi-kafka")
    # The exporter's and Cruise Control's default images are the broker image of the default
    # Kafka version (chart: kafka:<tag>-kafka-4.3.1); pinned to the catalog's digest of it (the
    # chart renders <repository>@<digest> (a digest replaces the tag). The per-version maps (STRIMZI_KAFKA_IMAGES, ...) cannot take one digest for four versions;
    # they are waived by image in policies/config with the reason.
    broker_pinned = {"registry": broker.registry, "repository": broker.repository, "name": "", "digest": broker.digest}
    return {
        "watchNamespaces": [stores.data_ns],
        "image": pinned,
        "topicOperator": {"image": pinned},
        "userOperator": {"image": pinned},
        "kafkaInit": {"image": pinned},
        "kafkaExporter": {"image": broker_pinned},
        "cruiseControl": {"image": broker_pinned},
        "resources": resource_requirements(stores.settings.operator_resources),
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {
            "runAsNonRoot": True, "allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        },
        "generateNetworkPolicy": True,
    }


CLIENT_PHASES = ("governance", "agents")
"""The later phases whose services write audit events (the gateway, the orchestrator, the governance
decision points); with the data namespace (ClickHouse reads the topic), the listener's only clients."""


def client_namespaces(stores: StoreContext) -> list[str]:
    return [stores.data_ns, *(getattr(stores.clients, phase) for phase in CLIENT_PHASES)]


class KafkaStore:
    def __init__(self, stores: StoreContext, opts: pulumi.ResourceOptions):
        s = stores.settings.kafka
        ctx = stores.ctx
        ns = stores.data_ns
        self.operator = helm_chart("strimzi", "strimzi-kafka-operator", stores.operators_ns, operator_values(stores), ctx, ctx.keep(opts))
        after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.operator]))
        labels = lambda name, component: {**recommended(name, component), **KAFKA_LABELS}  # noqa: E731
        pools = [("dual", ["controller", "broker"], s.brokers, s.storage)] if s.controllers == 1 and s.brokers == 1 else [
            ("controllers", ["controller"], s.controllers, s.controller_storage),
            ("brokers", ["broker"], s.brokers, s.storage),
        ]
        self.node_pools = [
            custom_resource(
                API, "KafkaNodePool", name, ns,
                {
                    "replicas": n, "roles": roles, "storage": node_storage(size, ctx.storage_class), "resources": resource_requirements(s.resources),
                    "template": {"pod": {"securityContext": POD_SECURITY}, "kafkaContainer": {"securityContext": CONTAINER_SECURITY}},
                },
                ctx.keep(after), labels=labels(name, "kafka-node-pool"),
            )
            for name, roles, n, size in pools
        ]
        replication = min(3, s.brokers)
        operator_image = ctx.catalog.image("strimzi-operator").reference
        kafka_image = ctx.catalog.image("strimzi-kafka")
        self.metrics_config = k8s.core.v1.ConfigMap(
            f"{ns}-{METRICS_CONFIG_MAP}",
            metadata={"name": METRICS_CONFIG_MAP, "namespace": ns, "labels": labels(METRICS_CONFIG_MAP, "kafka-metrics")},
            data={METRICS_CONFIG_KEY: JMX_EXPORTER_RULES},
            opts=opts,
        )
        pod_template = {"securityContext": POD_SECURITY, "affinity": anti_affinity(KAFKA_LABELS, ctx.high_availability)}
        self.cluster = custom_resource(
            API, "Kafka", CLUSTER, ns,
            {
                "kafka": {
                    "version": kafka_version(kafka_image.tag),
                    "image": kafka_image.reference,
                    "listeners": [
                        {
                            "name": "tls", "port": TLS_PORT, "type": "internal", "tls": True,
                            "authentication": {"type": "scram-sha-512"},
                            # Only labelled pods of the namespaces that run Kafka clients: ClickHouse
                            # (data) and the audit producers of the later phases; SCRAM users and
                            # ACLs still decide who may read or write.
                            "networkPolicyPeers": [client_peer("kafka", client_namespaces(stores)).as_rule()],
                        }
                    ],
                    "authorization": {"type": "simple"},
                    "config": {
                        "default.replication.factor": replication,
                        "min.insync.replicas": max(1, replication - 1),
                        "offsets.topic.replication.factor": replication,
                        "transaction.state.log.replication.factor": replication,
                        "transaction.state.log.min.isr": max(1, replication - 1),
                        "auto.create.topics.enable": False,
                    },
                    "template": {"pod": pod_template, "kafkaContainer": {"securityContext": CONTAINER_SECURITY}},
                    "metricsConfig": {
                        "type": "jmxPrometheusExporter",
                        "valueFrom": {"configMapKeyRef": {"name": METRICS_CONFIG_MAP, "key": METRICS_CONFIG_KEY}},
                    },
                },
                # The Kafka Exporter (consumer-group lag for the audit alerts) runs from the Kafka
                # image, which ships the kafka_exporter binary; every group and topic is exported.
                "kafkaExporter": {
                    "image": kafka_image.reference,
                    "groupRegex": ".*",
                    "topicRegex": ".*",
                    "resources": resource_requirements(EXPORTER_RESOURCES),
                    "template": {"pod": {"securityContext": POD_SECURITY}, "container": {"securityContext": CONTAINER_SECURITY}},
                },
                "entityOperator": {
                    "topicOperator": {"image": operator_image, "resources": resource_requirements(stores.settings.operator_resources)},
                    "userOperator": {"image": operator_image, "resources": resource_requirements(stores.settings.operator_resources)},
                    "template": {
                        "pod": {"securityContext": POD_SECURITY},
                        "topicOperatorContainer": {"securityContext": CONTAINER_SECURITY},
                        "userOperatorContainer": {"securityContext": CONTAINER_SECURITY},
                    },
                },
            },
            ctx.keep(pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[*self.node_pools, self.metrics_config]))),
            annotations={"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"},
        )
        after_cluster = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.cluster]))
        self.audit_topic = custom_resource(
            API, "KafkaTopic", AUDIT_TOPIC.replace(".", "-"), ns,
            {
                "topicName": AUDIT_TOPIC,
                "partitions": s.audit_partitions,
                "replicas": replication,
                "config": {"retention.ms": s.audit_retention_hours * 3_600_000, "cleanup.policy": "delete", "min.insync.replicas": max(1, replication - 1)},
            },
            after_cluster, labels=labels(AUDIT_TOPIC.replace(".", "-"), "kafka-topic"),
        )
        self.user_secrets = {}
        self.users = []
        for user in USERS:
            ref = stores.secrets.grant(
                USERS_SERVICE, ns, f"{USERS_SERVICE}-secrets", user.name,
                {"password": stores.secrets.password(password_name(user.name))}, create_service_account=True,
            )
            self.user_secrets[user.name] = ref
            self.users.append(custom_resource(
                API, "KafkaUser", user.name, ns,
                {
                    "authentication": {"type": "scram-sha-512", "password": {"valueFrom": {"secretKeyRef": {"name": ref.name, "key": "password"}}}},
                    "authorization": {"type": "simple", "acls": user.acls()},
                },
                after_cluster, labels=labels(user.name, "kafka-user"), ctx=ctx,
            ))
        self.bootstrap = f"{CLUSTER}-kafka-bootstrap.{ns}.svc:{TLS_PORT}"
        self.monitors = [
            pod_monitor(BROKER_MONITOR, ns, BROKER_LABELS, [SCRAPE], ctx, opts),
            pod_monitor(EXPORTER_MONITOR, ns, EXPORTER_LABELS, [SCRAPE], ctx, opts),
        ]
        self.ca_secret = CA_SECRET
        self.network_policies = self._network(stores, opts)

    @staticmethod
    def _network(stores: StoreContext, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """Strimzi generates the brokers' ingress policies; egress is closed by default-deny, so open it here."""
        ns, ops = stores.data_ns, stores.operators_ns
        kafka = Peer(namespace=ns, pods=KAFKA_LABELS)
        return [
            allow_egress("kafka-to-peers", ns, KAFKA_LABELS, [kafka], INTERNAL_PORTS, opts),
            allow_ingress("kafka-metrics-scrape", ns, KAFKA_LABELS, [stores.prometheus], [METRICS_PORT], opts),
            allow_egress("kafka-entity-operator-to-api-server", ns, ENTITY_LABELS, [stores.api_server], API_SERVER_PORTS, opts),
            allow_egress("kafka-entity-operator-to-brokers", ns, ENTITY_LABELS, [kafka], [9091], opts),
            allow_egress("strimzi-to-api-server", ops, OPERATOR_LABELS, [stores.api_server], API_SERVER_PORTS, opts),
            allow_egress("strimzi-to-kafka", ops, OPERATOR_LABELS, [kafka], [9090, 9091], opts),
        ]
