"""Every target Prometheus scrapes: its namespace, its pods and its metrics port.

Prometheus' egress (flows.py) is limited to exactly these pods and ports, so nothing is copied
here: each port and pod label comes from the module whose monitor and NetworkPolicy use it. A store that moves its
metrics port moves Prometheus' egress with it, and a target missing here is caught by the test
that compares this table with the ports the plan's target policies admit Prometheus on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from components.core import certificates
from components.core.data import clickhouse, kafka, minio, postgres, qdrant
from components.core.observability import node_logs
from components.core.observability import topology as t
from components.core.secrets import external_secrets, vault_server
from components.kit.labels import selector
from components.kit.workload import WorkloadArgs
from components.settings import CoreNamespaces

KIT_METRICS_PORT: int = next(f.default for f in dataclasses.fields(WorkloadArgs) if f.name == "metrics_port")
"""The ``metrics`` port of every kit workload, in whichever namespace a phase runs it."""

OBSERVABILITY_PORTS = (
    t.GRAFANA_HTTP, t.LOKI_HTTP, t.TEMPO_HTTP, t.EXPORTER_HTTP, t.EXPORTER_HTTP + 1,
    t.COLLECTOR_METRICS, t.PROMETHEUS_WEB, t.ALERTMANAGER_WEB,
)
"""The observability components' own metrics ports (kube-state-metrics and the operator on 8080,
kube-state-metrics' self-telemetry on 8081) and Alertmanager, which Prometheus sends alerts to."""


@dataclass(frozen=True)
class ScrapeTarget:
    """What is scraped: the Core namespace (by purpose), the pods (labels; empty: all) and the ports."""

    what: str
    namespace: str
    pods: tuple[tuple[str, str], ...]
    ports: tuple[int, ...]


def _target(what: str, namespace: str, pods: dict[str, str], *ports: int) -> ScrapeTarget:
    return ScrapeTarget(what, namespace, tuple(sorted(pods.items())), tuple(sorted(ports)))


CORE_TARGETS = (
    _target("MinIO (kit workload, metrics on its S3 port)", "data", selector(minio.NAME), minio.PORT),
    _target("PostgreSQL instances", "data", postgres.INSTANCE_LABELS, postgres.METRICS_PORT),
    _target("Qdrant", "data", qdrant.POD_LABELS, qdrant.HTTP_PORT),
    _target("Kafka brokers and Kafka Exporter", "data", kafka.KAFKA_LABELS, kafka.METRICS_PORT),
    _target("ClickHouse", "data", clickhouse.CHI_LABELS, clickhouse.METRICS_PORT),
    _target("Vault", "secrets", vault_server.POD_LABELS, vault_server.PORT),
    _target("External Secrets controller, webhook and cert-controller", "operators", external_secrets.METRICS_PODS,
            external_secrets.METRICS_PORT),
    _target("cert-manager controller, webhook and CA injector", "operators", certificates.POD_LABELS,
            certificates.METRICS_PORT),
    _target("observability components and Alertmanager", "observability", {}, *OBSERVABILITY_PORTS),
    _target("node log agent (when the stack runs it)", "node_logs", node_logs.POD_LABELS, node_logs.METRICS_PORT),
)


@dataclass(frozen=True)
class Scraped:
    """One target resolved for a stack: namespace name (None: Prometheus' own), pod labels, ports."""

    namespace: str | None
    pods: dict[str, str]
    ports: tuple[int, ...]


def core_targets(namespaces: CoreNamespaces) -> tuple[Scraped, ...]:
    """The Core targets with this stack's namespace names; the observability namespace is Prometheus' own.
    A target whose namespace the stack does not create (no node log agent) is left out."""
    return tuple(
        Scraped(None if t.namespace == "observability" else getattr(namespaces, t.namespace).name, dict(t.pods), t.ports)
        for t in CORE_TARGETS
        if t.namespace == "observability" or getattr(namespaces, t.namespace) is not None
    )
