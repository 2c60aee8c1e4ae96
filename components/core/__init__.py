"""Phase 1, Core: secrets, data stores and observability that every later phase builds on."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core import backup_watch
from components.core.certificates import Certificates
from components.core.data import ClientNamespaces, DataStores
from components.core.interfaces import SecretGrants
from components.core.observability import Observability, monitoring_stack
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


class Core(Phase):
    def __init__(self, settings: CoreSettings, ctx: KitContext, clients: ClientNamespaces, opts: pulumi.ResourceOptions | None = None):
        super().__init__("Core", opts)
        ns = settings.namespaces
        self.namespace = self.namespaces(
            {"operators": ns.operators, "secrets": ns.secrets, "data": ns.data, "observability": ns.observability}, ctx
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[n.namespace for n in self.namespace.values()])
        # First the monitoring CRDs (kube-prometheus-stack): every chart and monitoring object
        # below waits for them, through the context (observability/monitoring_stack.py).
        self.monitoring_stack = monitoring_stack.chart(settings, ctx, self, inside)
        ctx = ctx.with_metrics_crds(self.monitoring_stack)
        # cert-manager and the platform CA next: Vault's serving certificate is the first one they issue.
        self.certificates = Certificates(settings, ctx, opts=inside)
        self.secrets = Secrets(settings, ctx, self.certificates.issuer, opts=inside)
        # Everything below takes credentials from Vault, so it exists only once Vault is
        # initialised and core.vault.configure is true (docs/runbooks/core-secrets.md).
        self.data = (DataStores(settings, ctx, secrets=self.secrets, clients=clients, opts=inside, cert_manager=self.certificates.chart)
                     if self.secrets.configured else None)
        self.observability = (
            Observability(settings, ctx, self.secrets, self.data.object_store, self.data.postgres.access("grafana"),
                          self.monitoring_stack, clients.workloads, opts=inside) if self.data else None
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
        )
        self.register_outputs({"namespaces": [n.name for n in self.namespace.values()]})


__all__ = ["ClientNamespaces", "Core", "CoreOutputs", "telemetry_for"]
