"""Phase 1, Core: secrets, data stores and observability that every later phase builds on."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import pulumi

from components.core import backup_watch
from components.core.certificates import Certificates
from components.core.data import ClientNamespaces, DataStores
from components.core.interfaces import DatabaseAccess, KafkaClientAccess, SecretGrants, SecretRef, VaultAdmin
from components.core.observability import Observability, monitoring_stack, node_logs
from components.core.secrets import Secrets
from components.core.secrets.raft_snapshots import RaftSnapshots
from components.core.telemetry import telemetry_for
from components.kit import KitContext
from components.phase import Phase
from components.settings import CoreSettings


@dataclass(frozen=True)
class CoreOutputs:
    """What later phases may use from Core, and nothing else."""

    operators_namespace: str
    secrets_namespace: str
    data_namespace: str
    observability_namespace: str
    secrets: SecretGrants | None
    """Vault-backed credentials for later phases; None until core.vault.configure is true."""
    cluster_issuer: str
    """The cert-manager ClusterIssuer of the platform CA, for TLS inside the cluster."""
    api_server_cidr: str = ""
    """Where the Kubernetes API server is (its webhooks' callers, its watchers' destination)."""
    metrics_crds: tuple[pulumi.Resource, ...] = ()
    """The ServiceMonitor/PodMonitor/PrometheusRule CRDs: later phases' monitors wait for them."""
    vault: VaultAdmin | None = None
    """Vault's provider, Kubernetes-auth mount and endpoint, for phases that configure an engine of their
    own (the mesh CA); None until core.vault.configure is true."""
    cert_manager: pulumi.Resource | None = None
    """cert-manager's chart: what a later phase's Issuers and Certificates wait for (its CRDs and webhook)."""
    database: Callable[[str], DatabaseAccess] | None = None
    """How a later phase's service reaches its database on the platform's PostgreSQL (one of the Cluster's
    databases, e.g. ``openfga``); None until the data stores exist (core.vault.configure)."""
    kafka_producer: Callable[..., KafkaClientAccess] | None = None
    """``kafka_producer(consumer, namespace, after)``: how a later phase's service writes the audit topic on Core's
    Kafka (TLS + SCRAM-SHA-512 as ``audit-producer``; components/core/data/kafka_clients.py). Each call grants that
    one consumer the password and its namespace the cluster CA, and opens the brokers' ingress from it. None until
    the data stores exist (core.vault.configure)."""
    vault_ca: Callable[[str, Sequence[pulumi.Resource]], SecretRef | None] | None = None
    """``vault_ca(namespace, after)``: the Secret ``vault-ca`` (key ``ca.crt``) in ``namespace``, a copy of the CA Vault's
    TLS certificate chains to, for a client of Vault that must verify it; it returns None while Vault serves plain HTTP
    (dev mode). None until Vault is configured (core.vault.configure)."""


class Core(Phase):
    def __init__(self, settings: CoreSettings, ctx: KitContext, clients: ClientNamespaces, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Core", opts)
        ns = settings.namespaces
        wanted = {"operators": ns.operators, "secrets": ns.secrets, "data": ns.data, "observability": ns.observability}
        if ns.node_logs is not None:
            wanted["node_logs"] = ns.node_logs
        # the node log agent's namespace is the one exception to restricted Pod Security (a hostPath)
        self.namespace = self.namespaces(wanted, ctx, node_logs=("privileged", node_logs.POD_SECURITY_REASON))
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        # First the monitoring CRDs (kube-prometheus-stack): every chart and monitoring object
        # below waits for them, through the context (observability/monitoring_stack.py).
        monitoring = monitoring_stack.chart(settings, ctx, self, inside)
        self.monitoring_stack = monitoring.chart
        ctx = ctx.with_metrics_crds(*monitoring.metrics_crds)
        # cert-manager and the platform CA next: Vault's serving certificate is the first one they issue.
        self.certificates = Certificates(settings, ctx, opts=inside)
        self.secrets = Secrets(settings, ctx, self.certificates.issuer, opts=inside)
        # Everything below takes credentials from Vault, so it exists only once Vault is
        # initialised and core.vault.configure is true (docs/runbooks/core-secrets.md).
        self.data = (DataStores(settings, ctx, secrets=self.secrets, clients=clients, opts=inside, cert_manager=self.certificates.chart)
                     if self.secrets.configured else None)
        self.observability = (
            Observability(settings, ctx, self.secrets, self.data.object_store, self.data.postgres.access("grafana"),
                          self.monitoring_stack, clients.workloads, clients.phases, opts=inside,
                          later_targets=clients.scraped, clickhouse=self.data.clickhouse.grafana_reader,
                          compliance=clients.compliance) if self.data else None
        )
        # Every container's stdout and stderr, read on each node and pushed to Loki (its own namespace).
        agent = settings.observability.node_logs
        self.node_logs = (
            node_logs.NodeLogs(agent, settings.observability.collector, ctx, ns.node_logs.name,
                               self.observability.outputs.namespace, self.observability.outputs.loki_push_url,
                               settings.api_server_cidr, opts=inside)
            if self.observability and agent is not None and ns.node_logs is not None else None
        )
        # Vault's own backup: Raft snapshots to the same target as every other stream (raft mode only).
        self.raft_snapshots = (
            RaftSnapshots(settings, ctx, self.secrets, self.data.backup_target, opts=inside)
            if self.data and settings.vault.mode == "raft" else None
        )
        watches = list(self.data.backup_watches) if self.data else []
        if self.raft_snapshots:
            watches.append(self.raft_snapshots.backup_watch)
        self.backup_alerts = (
            backup_watch.backup_age_rule(watches, settings.backups.max_age_hours, ns.observability.name, ctx, inside)
            if self.data else None
        )
        self.outputs = CoreOutputs(
            operators_namespace=ns.operators.name,
            secrets_namespace=ns.secrets.name,
            data_namespace=ns.data.name,
            observability_namespace=ns.observability.name,
            secrets=self.secrets if self.secrets.configured else None,
            cluster_issuer=self.certificates.issuer.name,
            api_server_cidr=settings.api_server_cidr,
            metrics_crds=tuple(monitoring.metrics_crds),
            vault=self.secrets.admin(),
            cert_manager=self.certificates.chart,
            database=self.data.postgres.access if self.data else None,
            kafka_producer=self.data.kafka_clients.producer if self.data else None,
            vault_ca=self.secrets.vault_ca if self.secrets.configured else None,
        )
        self.register_outputs({"namespaces": [n.name for n in self.namespace.values()]})


__all__ = ["ClientNamespaces", "Core", "CoreOutputs", "telemetry_for"]
